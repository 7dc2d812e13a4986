/*
 * launcher.c: the native front of the `usernet` command
 * (build/Release/usernet-launcher, built by `npm install` next to the addon).
 *
 * Size: one translation unit on purpose. It runs before Node with a fixed
 * amount of memory, and its parts (recognising the command line, the help
 * texts, the exec) share static state; the attach (attach.c) and the sandbox
 * (sandbox.c) are apart.
 *
 * Theory of Operation
 * ===================
 *
 * Podman runs `HELPER --help` before every container it starts, and
 * RootlessKit does the same at start-up, so the slirp4netns-compatible command
 * has to answer `--help` as fast as slirp4netns (about 2 ms); starting Node
 * alone takes 50-60 ms. This program therefore answers the four command lines
 * that are a single `--help`, `-h`, `--version` or `-v` itself, and for every
 * other command line execs Node with the bundled CLI, so every message, exit
 * status and behaviour stays the TypeScript CLI's (src/cli/args.ts):
 *
 *   bin/usernet (sh) ──exec──▶ usernet-launcher ──execv──▶ node --max-semi-space-size=2
 *   USERNET_ARGV0=$0            argv[1..] unchanged          <pkg>/dist/bundle/usernet.js argv[1..]
 *                               │                            (src/cli/start.ts: reads and unsets
 *                               │ exactly one of --help -h    USERNET_ARGV0, calls main())
 *                               │ --version -v, texts present
 *                               ▼
 *                               write the text, exit 0
 *
 * Before it execs Node, for a command line that attaches a TAP and that it fully
 * understands, it creates (and with -c configures) the TAP itself, so that the
 * device exists within milliseconds of the spawn, as with slirp4netns, instead
 * of after Node's start-up; see "The TAP, before Node starts" below.
 *
 * The name messages call the program ("argv0") is what bin/usernet was run
 * as: POSIX sh has no `exec -a`, so the script passes its $0 in
 * USERNET_ARGV0. Run directly, the launcher uses its own argv[0]. Either way it
 * hands the name on to Node in the same variable, so both print the same name.
 *
 * The texts are not written here: `npm run build` (and the install script,
 * for a package built elsewhere) generates them from the functions
 * parseArgs() prints (src/cli/launcher-texts.ts), into
 * <pkg>/dist/launcher/, where <pkg> is three levels above this executable
 * (/proc/self/exe, so symlinks to it and copies of the package both work):
 *
 *   help.txt      the usage text with ARGV0_PLACEHOLDER where the name goes
 *   version.txt   the `-v` text, whose `node:` line names the Node that ran
 *                 the build
 *   node-id.txt   which file that Node was: "dev ino size mtime_ns"
 *
 * `-v` promises the version of the Node that would run usernet. That is the
 * first executable `node` in PATH, as `#!/usr/bin/env node` found it before
 * this launcher existed, so it is answered here only while that file is the
 * one the build recorded (same device, inode, size and modification time).
 * After Node is upgraded or PATH points elsewhere, the check fails and Node
 * itself answers (slow but true) until the next `npm run build` or
 * `npm rebuild` regenerates the text. A `node` in PATH that is a version manager's shim never matches,
 * so with one `-v` always goes through Node. Any text file missing,
 * unreadable or malformed: Node answers too.
 *
 * Single-threaded on purpose: the steps that need a process with one thread
 * (the TAP attach, attach_before_node(), whose child joins the target's user
 * namespace, see attach.c; later the mount sandbox and the capability drop,
 * which in Node would change only the calling thread) belong between
 * answer_locally() and exec_node(), and what they produce reaches Node the
 * way the name does, through the environment and inherited fds.
 */
#include "attach.h"
#include "sandbox.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Also spelled in bin/usernet and src/cli/start.ts (the variable) and
 * src/cli/launcher-texts.ts (the placeholder); test/e2e/launcher.test.ts
 * fails if they disagree. */
#define ARGV0_ENV "USERNET_ARGV0"
#define ARGV0_PLACEHOLDER "@ARGV0@"

/* Where the package's files are, relative to the package root. */
#define BUNDLE_IN_PKG "/dist/bundle/usernet.js"
#define TEXTS_IN_PKG "/dist/launcher/"

/* No text here comes near this; a bigger file is not one of ours. */
#define TEXT_MAX 65536

/* glibc's execvp searches this when PATH is unset (confstr _CS_PATH). */
#define DEFAULT_PATH "/bin:/usr/bin"

/* The package root: /proc/self/exe without its last three components
 * (build/Release/usernet-launcher, or build/Debug/… after node-gyp --debug).
 * The kernel keeps that link resolved, so a symlink to this executable leads
 * to the real package. */
static bool package_dir(char *out, size_t size) {
  ssize_t n = readlink("/proc/self/exe", out, size - 1);
  if (n < 0 || (size_t)n >= size - 1) return false;
  out[n] = '\0';
  for (int i = 0; i < 3; i++) {
    char *slash = strrchr(out, '/');
    if (slash == NULL || slash == out) return false;
    *slash = '\0';
  }
  return true;
}

/* The whole of <pkg>/dist/launcher/<name>, NUL-terminated, or NULL when it
 * cannot be read, is empty or is larger than TEXT_MAX. */
static char *read_text(const char *pkg, const char *name, size_t *len) {
  char path[PATH_MAX];
  if ((size_t)snprintf(path, sizeof path, "%s" TEXTS_IN_PKG "%s", pkg, name) >= sizeof path) return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  char *buf = malloc(TEXT_MAX + 1);
  size_t got = 0;
  bool eof = false;
  while (buf != NULL && got <= TEXT_MAX) {
    ssize_t n = read(fd, buf + got, TEXT_MAX + 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (n == 0) {
      eof = true;
      break;
    }
    got += (size_t)n;
  }
  close(fd);
  if (!eof || got == 0) {
    free(buf);
    return NULL;
  }
  buf[got] = '\0';
  *len = got;
  return buf;
}

/* The file execvp("node") would run: the first PATH entry holding an
 * executable regular file named `node` (an empty entry is the current
 * directory). Searched here rather than left to execvp so that the file `-v`
 * checks is the file that runs. */
static bool find_node(char *out, size_t size) {
  const char *path = getenv("PATH");
  if (path == NULL) path = DEFAULT_PATH;
  for (const char *p = path;; p++) {
    const char *end = strchrnul(p, ':');
    int dir_len = (int)(end - p);
    int n = dir_len == 0 ? snprintf(out, size, "node") : snprintf(out, size, "%.*s/node", dir_len, p);
    struct stat st;
    if (n > 0 && (size_t)n < size && stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0) {
      return true;
    }
    if (*end == '\0') return false;
    p = end;
  }
}

/* Whether `node` is the file <pkg>/dist/launcher/<id_name> describes
 * ("dev ino size mtime_ns": the node that ran the build). */
static bool node_matches(const char *pkg, const char *id_name, const char *node) {
  size_t len;
  char *id = read_text(pkg, id_name, &len);
  if (id == NULL) return false;
  unsigned long long dev, ino, size, mtime_ns;
  char end;
  bool parsed = sscanf(id, "%llu %llu %llu %llu%c", &dev, &ino, &size, &mtime_ns, &end) == 5 && end == '\n';
  free(id);
  struct stat st;
  if (!parsed || stat(node, &st) != 0) return false;
  unsigned long long st_mtime_ns = (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL + (unsigned long long)st.st_mtim.tv_nsec;
  return dev == (unsigned long long)st.st_dev && ino == (unsigned long long)st.st_ino &&
         size == (unsigned long long)st.st_size && mtime_ns == st_mtime_ns;
}

/* Writes all of buf to stdout. A closed stdout counts as written: Node, which
 * answered before, reopens fds 0-2 on /dev/null, and slirp4netns ignores the
 * error. A full pipe or disk does not; a reader that went away raises SIGPIPE,
 * left at its default as in slirp4netns. */
static bool write_out(const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(STDOUT_FILENO, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EBADF;
    buf += n;
    len -= (size_t)n;
  }
  return true;
}

/* `text` with every ARGV0_PLACEHOLDER replaced by `argv0`, written out. */
static bool write_with_argv0(const char *text, size_t len, const char *argv0) {
  const size_t ph_len = strlen(ARGV0_PLACEHOLDER);
  const char *end = text + len;
  for (;;) {
    const char *ph = memmem(text, (size_t)(end - text), ARGV0_PLACEHOLDER, ph_len);
    if (ph == NULL) return write_out(text, (size_t)(end - text));
    if (!write_out(text, (size_t)(ph - text)) || !write_out(argv0, strlen(argv0))) return false;
    text = ph + ph_len;
  }
}

enum answer { NOT_ANSWERED, ANSWERED, WRITE_FAILED };

/* The argv slirp4netns answers without doing anything: exactly one
 * `--help`/`-h` or `--version`/`-v`. Anything longer, an abbreviation such as
 * `--he`, or a missing text goes to Node, which handles it as before. */
static enum answer answer_locally(int argc, char **argv, const char *pkg, const char *node, const char *argv0) {
  if (argc != 2) return NOT_ANSWERED;
  const char *a = argv[1];
  bool help = strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
  bool version = strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0;
  if (!help && !version) return NOT_ANSWERED;
  if (version && (node == NULL || !node_matches(pkg, "node-id.txt", node))) return NOT_ANSWERED;

  size_t len;
  char *text = read_text(pkg, help ? "help.txt" : "version.txt", &len);
  if (text == NULL) return NOT_ANSWERED;
  bool ok = help ? write_with_argv0(text, len, argv0) : write_out(text, len);
  free(text);
  return ok ? ANSWERED : WRITE_FAILED;
}

/* ---------------------------------------------------------------------------
 * The TAP, before Node starts.
 *
 * slirp4netns has tap0 in the container about 3 ms after it was spawned;
 * Node alone takes 50-60 ms to start, and clients do not wait for the ready
 * fd before they touch the device (slirp4netns's own DHCP test runs
 * `ip link set tap0 up` about 25 ms after starting the helper). So for the
 * command lines it fully understands, the launcher runs the attach itself
 * (attach.c, the same code the addon runs) and hands the outcome to Node in
 * TAP_ENV:
 *
 *   ok:FD:VNET:IPV6ERRNO    FD is the TAP, inherited (FD_CLOEXEC cleared);
 *                           VNET 1 when opened with IFF_VNET_HDR
 *   child:STATUS:MESSAGE    the child failed (its reason is already on
 *                           stderr); MESSAGE is "child failed(N)"
 *   parent:ERRNO:MESSAGE    socketpair, fork, waitpid or recvmsg failed
 *
 * src/cli/main.ts then skips its own attach and prints exactly what it
 * would have printed after one, in the same order relative to its parse-time
 * output. "Fully understands" is deliberately narrow: any doubt (an option
 * outside ATTACH_OPTIONS' handled subset, a value the TypeScript parser might
 * read differently, bess, run mode's `--`, USERNET_NO_OFFLOAD,
 * POSIXLY_CORRECT, an exit or ready fd that is not open) leaves argv to Node
 * untouched, so every message and exit status stays the TypeScript CLI's.
 */

/* Also in src/cli/launcher-tap.ts. */
#define TAP_ENV "USERNET_LAUNCHER_TAP"

/* slirp4netns's getopt_long table, in its order (the order decides how an
 * abbreviation resolves); the same as LONG_OPTIONS in src/cli/getopt.ts. */
enum { OPT_CIDR = 256, OPT_DISABLE_HOST_LOOPBACK, OPT_NO_HOST_LOOPBACK, OPT_NETNS_TYPE, OPT_USERNS_PATH,
       OPT_ENABLE_SANDBOX, OPT_CREATE_SANDBOX, OPT_ENABLE_SECCOMP, OPT_OUTBOUND_ADDR, OPT_OUTBOUND_ADDR6,
       OPT_DISABLE_DNS, OPT_MACADDRESS, OPT_TARGET_TYPE };
static const struct option ATTACH_OPTIONS[] = {
    {"configure", no_argument, NULL, 'c'},
    {"exit-fd", required_argument, NULL, 'e'},
    {"ready-fd", required_argument, NULL, 'r'},
    {"mtu", required_argument, NULL, 'm'},
    {"cidr", required_argument, NULL, OPT_CIDR},
    {"disable-host-loopback", no_argument, NULL, OPT_DISABLE_HOST_LOOPBACK},
    {"no-host-loopback", no_argument, NULL, OPT_NO_HOST_LOOPBACK},
    {"netns-type", required_argument, NULL, OPT_NETNS_TYPE},
    {"userns-path", required_argument, NULL, OPT_USERNS_PATH},
    {"api-socket", required_argument, NULL, 'a'},
    {"enable-ipv6", no_argument, NULL, '6'},
    {"enable-sandbox", no_argument, NULL, OPT_ENABLE_SANDBOX},
    {"create-sandbox", no_argument, NULL, OPT_CREATE_SANDBOX},
    {"enable-seccomp", no_argument, NULL, OPT_ENABLE_SECCOMP},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'v'},
    {"outbound-addr", required_argument, NULL, OPT_OUTBOUND_ADDR},
    {"outbound-addr6", required_argument, NULL, OPT_OUTBOUND_ADDR6},
    {"disable-dns", no_argument, NULL, OPT_DISABLE_DNS},
    {"macaddress", required_argument, NULL, OPT_MACADDRESS},
    {"target-type", required_argument, NULL, OPT_TARGET_TYPE},
    {NULL, 0, NULL, 0},
};

/* Plain decimal without sign, spaces or leading zeros, in [min, max]: the
 * values on which slirp4netns's strtol and the TypeScript parser cannot
 * disagree. */
static bool plain_decimal(const char *s, unsigned long min, unsigned long max, unsigned long *out) {
  unsigned long v = 0;
  size_t n = strlen(s);
  if (n == 0 || n > 9 || (n > 1 && s[0] == '0')) return false;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (unsigned long)(s[i] - '0');
  }
  if (v < min || v > max) return false;
  *out = v;
  return true;
}

/* a.b.c.d/n with plain decimal parts, n 1-25 and no host bits: what
 * parseCidr() accepts without a message. */
static bool plain_cidr(const char *s, uint32_t *network, uint32_t *prefix) {
  char buf[32];
  if (strlen(s) >= sizeof buf) return false;
  memcpy(buf, s, strlen(s) + 1);
  char *slash = strchr(buf, '/');
  if (slash == NULL) return false;
  *slash = '\0';
  unsigned long len;
  if (!plain_decimal(slash + 1, 1, 25, &len)) return false;
  uint32_t addr = 0;
  char *p = buf;
  for (int i = 0; i < 4; i++) {
    char *dot = strchr(p, '.');
    if ((i < 3) != (dot != NULL)) return false;
    if (dot != NULL) *dot = '\0';
    unsigned long octet;
    if (!plain_decimal(p, 0, 255, &octet)) return false;
    addr = addr << 8 | (uint32_t)octet;
    p = dot + 1;
  }
  uint32_t mask = 0xffffffffu << (32 - len);
  if ((addr & mask) != addr) return false;
  *network = addr;
  *prefix = (uint32_t)len;
  return true;
}

/* xx:xx:xx:xx:xx:xx, two hex digits each. */
static bool plain_mac(const char *s, uint8_t mac[6]) {
  if (strlen(s) != 17) return false;
  for (int i = 0; i < 6; i++) {
    const char *f = s + 3 * i;
    if (!isxdigit((unsigned char)f[0]) || !isxdigit((unsigned char)f[1]) || (i < 5 && f[2] != ':')) return false;
    char hex[3] = {f[0], f[1], '\0'};
    mac[i] = (uint8_t)strtoul(hex, NULL, 16);
  }
  return true;
}

static bool fd_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static bool copy_path(char *dst, size_t size, const char *src) {
  size_t n = strlen(src);
  if (n == 0 || n >= size) return false;
  memcpy(dst, src, n + 1);
  return true;
}

/* userNamespaceToJoin() in src/cli/main.ts: /proc/PID/ns/user when it is not
 * already ours (by inode); none when either cannot be read. */
static void pid_userns(struct attach_req *rq, unsigned long pid) {
  struct stat theirs, ours;
  snprintf(rq->userns, sizeof rq->userns, "/proc/%lu/ns/user", pid);
  rq->has_userns = stat(rq->userns, &theirs) == 0 && stat("/proc/self/ns/user", &ours) == 0 &&
                   theirs.st_ino != ours.st_ino;
}

/* What else the command line asks of the launcher besides the attach. */
struct plan {
  bool sandbox;           /* --enable-sandbox (or the deprecated --create-sandbox) */
  const char *api_socket; /* -a/--api-socket, or NULL */
};

/* An address literal of the family: --outbound-addr and --outbound-addr6
 * values the TypeScript parser takes as they are (interface names need a
 * lookup whose messages it owns). */
static bool plain_address(int family, const char *s) {
  unsigned char buf[16];
  return inet_pton(family, s, buf) == 1;
}

/* Fills *rq and *pl when argv is a command line main.ts would attach for,
 * with the same request; false for anything else (see above). */
static bool plan_attach(int argc, char **argv, struct attach_req *rq, struct plan *pl) {
  const char *no_offload = getenv("USERNET_NO_OFFLOAD");
  if (getenv("POSIXLY_CORRECT") != NULL || (no_offload != NULL && no_offload[0] != '\0' && strcmp(no_offload, "0") != 0))
    return false;
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--") == 0) return false;

  /* getopt_long permutes what it parses; Node gets argv as it came. */
  char **args = calloc((size_t)argc + 1, sizeof *args);
  if (args == NULL) return false;
  memcpy(args, argv, (size_t)argc * sizeof *args);

  bool ok = true, mac_given = false, ipv6 = false;
  const char *netns_type = NULL, *userns_path = NULL;
  unsigned long mtu = 1500, fd;
  uint32_t network = 0x0a000200, prefix = 24; /* 10.0.2.0/24 */
  opterr = 0;
  int c;
  while (ok && (c = getopt_long(argc, args, "ce:r:m:a:6hv", ATTACH_OPTIONS, NULL)) != -1) {
    switch (c) {
      case 'c':
        rq->configure = true;
        break;
      case 'e':
      case 'r':
        ok = plain_decimal(optarg, 0, INT_MAX, &fd) && fd_open((int)fd);
        break;
      case 'm':
        /* Below 68 the TypeScript side fails later, after the attach. */
        ok = plain_decimal(optarg, 68, 65521, &mtu);
        break;
      case 'a':
        pl->api_socket = optarg;
        break;
      case OPT_ENABLE_SANDBOX:
      case OPT_CREATE_SANDBOX:
        pl->sandbox = true;
        break;
      case OPT_OUTBOUND_ADDR:
        ok = plain_address(AF_INET, optarg);
        break;
      case OPT_OUTBOUND_ADDR6:
        ok = plain_address(AF_INET6, optarg);
        break;
      case OPT_DISABLE_HOST_LOOPBACK:
      case OPT_DISABLE_DNS:
      /* Node installs the filter after the attach, before the ready fd. */
      case OPT_ENABLE_SECCOMP:
        break;
      case '6':
        ipv6 = true;
        break;
      case OPT_CIDR:
        ok = plain_cidr(optarg, &network, &prefix);
        break;
      case OPT_NETNS_TYPE:
        netns_type = optarg;
        break;
      case OPT_USERNS_PATH:
        userns_path = optarg;
        ok = access(optarg, F_OK) == 0;
        break;
      case OPT_MACADDRESS:
        ok = mac_given = plain_mac(optarg, rq->mac);
        break;
      case OPT_TARGET_TYPE:
        ok = strcmp(optarg, "netns") == 0;
        break;
      default: /* errors, help, version, deprecated or unsupported options */
        ok = false;
    }
  }
  ok = ok && argc - optind == 2 && (!mac_given || rq->configure);
  const char *target = ok ? args[optind] : NULL, *tapname = ok ? args[optind + 1] : NULL;
  free(args);
  if (!ok) return false;

  if (netns_type == NULL || strcmp(netns_type, "pid") == 0) {
    unsigned long pid;
    if (!plain_decimal(target, 1, INT_MAX, &pid)) return false;
    snprintf(rq->netns, sizeof rq->netns, "/proc/%lu/ns/net", pid);
    pid_userns(rq, pid);
  } else if (!copy_path(rq->netns, sizeof rq->netns, target) || access(target, F_OK) != 0) {
    return false;
  }
  if (userns_path != NULL) {
    if (!copy_path(rq->userns, sizeof rq->userns, userns_path)) return false;
    rq->has_userns = true;
  }
  if (!copy_path(rq->tapname, sizeof rq->tapname, tapname)) return false;
  attach_set_ifname(rq);

  rq->vnet_hdr = true;
  rq->mtu = (uint32_t)mtu;
  rq->has_mac = mac_given;
  rq->addr = network + 100;
  rq->netmask = 0xffffffffu << (32 - prefix);
  rq->gateway = network + 2;
  if (rq->configure && ipv6) {
    /* configureIpv6() in src/cli/stack-options.ts: fd00::/64 with an all-zero
     * interface id (the child fills in the EUI-64), via fe80::2. */
    rq->has_ipv6 = true;
    memset(rq->addr6, 0, sizeof rq->addr6);
    rq->addr6[0] = 0xfd;
    rq->prefix6 = 64;
    memset(rq->gateway6, 0, sizeof rq->gateway6);
    rq->gateway6[0] = 0xfe;
    rq->gateway6[1] = 0x80;
    rq->gateway6[15] = 2;
  }
  return true;
}

/* Runs the attach when plan_attach() says so and leaves its outcome in
 * TAP_ENV for Node. True when the TAP is attached (then *rq and *pl hold the
 * plan). */
static bool attach_before_node(int argc, char **argv, struct attach_req *rq, struct plan *pl) {
  unsetenv(TAP_ENV);
  if (!plan_attach(argc, argv, rq, pl)) return false;
  struct attach_result res;
  attach_run(rq, &res);
  char value[sizeof res.message + 64];
  bool ok = false;
  switch (res.outcome) {
    case ATTACH_OK:
      /* Inherited by Node: main.ts owns it from then on. */
      if (fcntl(res.fd, F_SETFD, 0) < 0) {
        int e = errno;
        const char *desc = errno_text(e);
        snprintf(value, sizeof value, "parent:%d:fcntl(F_SETFD): %s", e, desc != NULL ? desc : "Unknown error");
        close(res.fd);
        break;
      }
      snprintf(value, sizeof value, "ok:%d:1:%d", res.fd, (int)res.ipv6_errno);
      ok = true;
      break;
    case ATTACH_CHILD_FAILED:
      snprintf(value, sizeof value, "child:%d:%s", res.exit_status, res.message);
      break;
    case ATTACH_PARENT_FAILED:
      snprintf(value, sizeof value, "parent:%d:%s", res.err, res.message);
      break;
  }
  setenv(TAP_ENV, value, 1);
  return ok;
}

/* ---------------------------------------------------------------------------
 * --enable-sandbox (sandbox.c), after the attach and before Node starts.
 *
 * What Node will open later and cannot open inside the sandbox is opened
 * here, after the user namespace join (so files are created as slirp4netns
 * creates them) and before the mount namespace, and handed over in the
 * environment as "fd:N" (inherited) or "err:ERRNO" (src/cli/launcher-sandbox.ts
 * turns that into the message Node's own open or listen would have given):
 *
 *   USERNET_LAUNCHER_API      the API socket, unlinked first, bound and listening
 *   USERNET_LAUNCHER_PCAP     USERNET_PCAP's file, opened as Node opens it
 *   USERNET_LAUNCHER_SANDBOX  "1": every step below succeeded
 *
 * A relative USERNET_RESOLV_CONF or USERNET_POLICY is made absolute (the
 * sandbox's working directory is its root); both files are bound inside. Any failure of the sandbox itself is one line on
 * stderr and exit status 1: the helper never runs with less isolation than
 * it was asked for.
 */

/* Also in src/cli/launcher-sandbox.ts. */
#define SANDBOX_ENV "USERNET_LAUNCHER_SANDBOX"
#define API_ENV "USERNET_LAUNCHER_API"
#define PCAP_ENV "USERNET_LAUNCHER_PCAP"
#define LAUNCHED_ENV "USERNET_LAUNCHER"

static void hand_over_fd(const char *name, int fd, int err) {
  char value[32];
  if (fd >= 0) snprintf(value, sizeof value, "fd:%d", fd);
  else snprintf(value, sizeof value, "err:%d", err);
  setenv(name, value, 1);
}

/* Like ApiServer.listen(): unlink whatever is at the path, bind, listen. */
static void open_api_socket(const char *path) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) {
    hand_over_fd(API_ENV, -1, ENAMETOOLONG);
    return;
  }
  memcpy(sa.sun_path, path, strlen(path));
  unlink(path);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 511) < 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    hand_over_fd(API_ENV, -1, e);
    return;
  }
  hand_over_fd(API_ENV, fd, 0);
}

/* The environment variable's path, made absolute (the sandbox's working
 * directory is its root); NULL when unset or empty. */
static const char *absolute_env(const char *name) {
  const char *v = getenv(name);
  if (v == NULL || v[0] == '\0') return NULL;
  if (v[0] != '/') {
    char cwd[PATH_MAX], abs[PATH_MAX * 2];
    if (getcwd(cwd, sizeof cwd) != NULL) {
      snprintf(abs, sizeof abs, "%s/%s", cwd, v);
      setenv(name, abs, 1);
      v = getenv(name);
    }
  }
  return v;
}

static bool sandbox_before_node(const struct attach_req *rq, const struct plan *pl, const char *pkg, const char *node,
                                struct sandbox_out *out, const char *argv0) {
  char err[512];
  unsetenv(API_ENV);
  unsetenv(PCAP_ENV);
  if (sandbox_join_userns(rq->has_userns ? rq->userns : NULL, err, sizeof err) < 0) {
    fprintf(stderr, "%s: --enable-sandbox: %s\n", argv0, err);
    return false;
  }
  if (pl->api_socket != NULL) open_api_socket(pl->api_socket);
  const char *pcap = getenv("USERNET_PCAP");
  if (pcap != NULL && pcap[0] != '\0') {
    int fd = open(pcap, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    hand_over_fd(PCAP_ENV, fd, errno);
  }
  const char *resolv = absolute_env("USERNET_RESOLV_CONF");
  const char *policy = absolute_env("USERNET_POLICY");
  struct sandbox_req req = {.pkg = pkg, .node = node, .files = {"/etc/resolv.conf", resolv, policy}};
  if (sandbox_enter(&req, out, err, sizeof err) < 0) {
    fprintf(stderr, "%s: --enable-sandbox: %s\n", argv0, err);
    return false;
  }
  setenv(SANDBOX_ENV, "1", 1);
  return true;
}

/* Where exec_node() finds the startup snapshot (src/cli/snapshot-entry.ts)
 * and which `node` built it ("dev ino size mtime_ns", as node-id.txt). */
#define SNAPSHOT_IN_PKG TEXTS_IN_PKG "usernet.blob"
#define SNAPSHOT_ID_NAME "snapshot-node-id.txt"

/* Whether the snapshot may start `node`, with its path in `out`: the blob is
 * readable, not older than the bundle, and SNAPSHOT_ID_NAME names that very
 * `node`. Node refuses a blob another Node build wrote (it exits with an
 * error, it does not fall back), so after an upgrade of Node, or with another
 * `node` first in PATH, the bundle runs until the next `npm run build` or
 * `npm rebuild`. A bundle rebuilt without the blob (rolldown by hand) runs
 * too, rather than the older code in the blob. */
static bool snapshot_for(const char *pkg, const char *node, char *out, size_t size) {
  if (!node_matches(pkg, SNAPSHOT_ID_NAME, node)) return false;
  char bundle[PATH_MAX];
  struct stat blob_st, bundle_st;
  if ((size_t)snprintf(out, size, "%s" SNAPSHOT_IN_PKG, pkg) >= size || access(out, R_OK) != 0 || stat(out, &blob_st) != 0)
    return false;
  if ((size_t)snprintf(bundle, sizeof bundle, "%s" BUNDLE_IN_PKG, pkg) < sizeof bundle && stat(bundle, &bundle_st) == 0 &&
      (blob_st.st_mtim.tv_sec < bundle_st.st_mtim.tv_sec ||
       (blob_st.st_mtim.tv_sec == bundle_st.st_mtim.tv_sec && blob_st.st_mtim.tv_nsec < bundle_st.st_mtim.tv_nsec)))
    return false;
  return true;
}

/* Also in src/cli/start.ts. */
#define CA_CERTS_ENV "NODE_EXTRA_CA_CERTS"
#define HELD_CA_CERTS_ENV "USERNET_NODE_EXTRA_CA_CERTS"

/* Node 20 reads and parses NODE_EXTRA_CA_CERTS's file, with its own root
 * store, at every start-up, before any JavaScript runs: 45-90 ms with a
 * distribution's 220 KB bundle on this project's VM, more than the rest of
 * Node's start. usernet makes no TLS connection, so the variable reaches
 * Node under another name, and start.ts puts it back into process.env for
 * the programs usernet starts (run mode's COMMAND). A stale held value is
 * dropped, so that start.ts never restores one the user did not set. */
static bool hold_back_ca_certs(void) {
  const char *v = getenv(CA_CERTS_ENV);
  if (v == NULL) return unsetenv(HELD_CA_CERTS_ENV) == 0;
  return setenv(HELD_CA_CERTS_ENV, v, 1) == 0 && unsetenv(CA_CERTS_ENV) == 0;
}

/* `node --max-semi-space-size=2 --snapshot-blob <pkg>/dist/launcher/usernet.blob -- argv[1..]`
 * when snapshot_for() allows it, else
 * `node --max-semi-space-size=2 <pkg>/dist/bundle/usernet.js argv[1..]`.
 *
 * --max-semi-space-size=2 (MiB): the data path allocates almost nothing per
 * packet, so a small young generation costs no throughput (measured: iperf3 at
 * MTU 1500 unchanged), while Node's default lets a burst of new connections
 * grow it by tens of MB that then stay resident: 16 KB instead of 11 KB of RSS
 * per idle connection with 2,000 connections (bench/tcp-rss.js). The snapshot
 * is built with the same flag (src/cli/build-snapshot.ts).
 *
 * dist/bundle/usernet.js is src/cli/entry.ts and everything it imports in one
 * file (`npm run build`, rolldown): Node loads one module instead of ~80,
 * which takes tens of milliseconds off the time to the ready fd. The snapshot
 * holds the same code already evaluated, and takes off most of the rest
 * (bench/ready-latency.py). With no script name, Node would read the
 * arguments as its own options: `--` ends them. */
static int exec_node(int argc, char **argv, const char *pkg, const char *node, const char *argv0) {
  char bundle[PATH_MAX], blob[PATH_MAX];
  if (node == NULL) {
    fprintf(stderr, "%s: node: no executable named node in PATH\n", argv0);
    return 127;
  }
  bool snapshot = snapshot_for(pkg, node, blob, sizeof blob);
  if (!snapshot && (size_t)snprintf(bundle, sizeof bundle, "%s" BUNDLE_IN_PKG, pkg) >= sizeof bundle) {
    fprintf(stderr, "%s: %s" BUNDLE_IN_PKG ": %s\n", argv0, pkg, strerror(ENAMETOOLONG));
    return 1;
  }
  char **args = calloc((size_t)argc + 5, sizeof *args);
  if (args == NULL || setenv(ARGV0_ENV, argv0, 1) != 0 || !hold_back_ca_certs()) {
    fprintf(stderr, "%s: %s\n", argv0, strerror(errno));
    return 1;
  }
  int n = 0;
  args[n++] = "node";
  args[n++] = "--max-semi-space-size=2";
  if (snapshot) {
    args[n++] = "--snapshot-blob";
    args[n++] = blob;
    args[n++] = "--";
  } else {
    args[n++] = bundle;
  }
  for (int i = 1; i < argc; i++) args[n++] = argv[i];
  execv(node, args);
  int err = errno;
  fprintf(stderr, "%s: %s: %s\n", argv0, node, strerror(err));
  return err == ENOENT ? 127 : 126;
}

int main(int argc, char **argv) {
  const char *argv0 = getenv(ARGV0_ENV);
  if (argv0 == NULL || argv0[0] == '\0') argv0 = argc > 0 ? argv[0] : "usernet";

  char pkg[PATH_MAX];
  if (!package_dir(pkg, sizeof pkg)) {
    fprintf(stderr, "%s: cannot find the usernet package: /proc/self/exe is not <pkg>/build/*/usernet-launcher\n", argv0);
    return 1;
  }
  char node_buf[PATH_MAX];
  const char *node = find_node(node_buf, sizeof node_buf) ? node_buf : NULL;

  switch (answer_locally(argc, argv, pkg, node, argv0)) {
    case ANSWERED:
      return 0;
    case WRITE_FAILED:
      return 1;
    case NOT_ANSWERED:
      break;
  }
  /* What Node does first at start-up (a closed 0, 1 or 2 gets /dev/null;
   * Node aborts when it cannot open it, as in the sandbox, which has no
   * /dev), done here before the attach so that no fd of ours can take those
   * numbers. */
  for (int i = 0; i < 3; i++) {
    if (fd_open(i)) continue;
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0 && fd != i) {
      dup2(fd, i);
      close(fd);
    }
  }
  unsetenv(SANDBOX_ENV);
  /* Node offers --enable-sandbox only when it was started from here. */
  setenv(LAUNCHED_ENV, "1", 1);
  if (node == NULL) return exec_node(argc, argv, pkg, node, argv0);
  struct attach_req *rq = calloc(1, sizeof *rq);
  struct plan pl = {false, NULL};
  if (rq != NULL && attach_before_node(argc, argv, rq, &pl) && pl.sandbox) {
    static struct sandbox_out out;
    bool ok = sandbox_before_node(rq, &pl, pkg, node, &out, argv0);
    free(rq);
    if (!ok) return 1;
    return exec_node(argc, argv, out.pkg, out.node, argv0);
  }
  free(rq);
  return exec_node(argc, argv, pkg, node, argv0);
}
