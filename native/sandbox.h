/*
 * sandbox.h: --enable-sandbox, done by the launcher (launcher.c) while it is
 * single-threaded, between the TAP attach and execve(node). The Theory of
 * Operation is at the top of sandbox.c.
 */
#ifndef USERNET_SANDBOX_H
#define USERNET_SANDBOX_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/* Where the package is bound inside the sandbox's root. */
#define SANDBOX_PKG_DIR "/usernet"
/* Where the node executable is bound when it is not under /usr. */
#define SANDBOX_NODE_PATH "/node"

/* Step 1: when not root, join the user namespace at `userns_path` (the one
 * the attach child joined), so that the steps below have the capabilities
 * they need; none to join is an error then. Root does nothing. Returns 0,
 * or -1 with a one-line reason in `err`. */
int sandbox_join_userns(const char *userns_path, char *err, size_t err_size);

struct sandbox_req {
  /* The package root on the host (becomes SANDBOX_PKG_DIR). */
  const char *pkg;
  /* The node executable on the host. */
  const char *node;
  /* Files Node will read inside (NULL entries skipped): the resolv.conf the
   * DNS forwarder reads, USERNET_POLICY's file. Those whose real path is
   * outside /etc and /usr are bound at that path (under /run, their
   * directory). */
  const char *files[3];
};

struct sandbox_out {
  /* Paths to exec inside the new root. */
  char node[PATH_MAX];
  char pkg[PATH_MAX];
};

/* Step 2: the mount sandbox (new mount, IPC and UTS namespaces; a read-only
 * tmpfs root with /etc, /usr, the library directories, the package, node,
 * resolv.conf and an empty /run; pivot_root), then no_new_privs and every capability
 * but CAP_NET_BIND_SERVICE dropped. Anything to be used later (the API
 * socket, the pcap file, the TAP) must be open before. Returns 0, or -1 with
 * a one-line reason in `err` (the process is then in an unknown state and
 * must exit). */
int sandbox_enter(const struct sandbox_req *rq, struct sandbox_out *out, char *err, size_t err_size);

#endif
