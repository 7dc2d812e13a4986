{
  "targets": [
    {
      "target_name": "usernet_native",
      "sources": [
        "native/addon.c",
        "native/tap.c",
        "native/attach.c",
        "native/io.c",
        "native/poll.c",
        "native/busy-poll.c",
        "native/ping.c",
        "native/udp.c",
        "native/udp-err.c",
        "native/stream.c",
        "native/seccomp.c"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "_GNU_SOURCE",
        "NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED"
      ],
      "cflags!": ["-O3", "-Wno-unused-parameter"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    },
    {
      "target_name": "usernet-launcher",
      "type": "executable",
      "sources": ["native/launcher.c", "native/attach.c", "native/sandbox.c"],
      "defines": ["_GNU_SOURCE"],
      "cflags!": ["-O3", "-Wno-unused-parameter"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
