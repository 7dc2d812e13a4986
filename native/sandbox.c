/*
 * sandbox.c: --enable-sandbox for the launcher.
 *
 * Theory of Operation
 * ===================
 *
 * slirp4netns's --enable-sandbox leaves the helper in an empty read-only root
 * that holds only /etc and /run, with no capability but CAP_NET_BIND_SERVICE
 * and no way to gain one. usernet does the same, with three differences:
 *
 *  - It is done here, in the launcher, before execve(node), because mount
 *    namespaces, pivot_root, user namespace joins and capability sets are per
 *    thread and Node starts about ten threads before any user code runs; a
 *    process with one thread that does all of it before exec hands the result
 *    to every thread Node will ever start (docs/architecture.md, "Process
 *    model").
 *
 *  - The root must also hold what exec and Node need: /usr and the library
 *    directories (read-only but executable: ld.so, libnode and the addon are
 *    mapped PROT_EXEC), the package (at SANDBOX_PKG_DIR, so that a package
 *    installed under /home or /root does not bring those names into the
 *    root), and node itself when it does not live under /usr
 *    (SANDBOX_NODE_PATH).
 *
 *  - /run is empty but for the directory of a resolv.conf that lives there.
 *    /run is where the host's UNIX sockets are (the system D-Bus, the
 *    user's session bus and systemd under /run/user/UID, the Podman and
 *    Docker sockets), a read-only mount does not stop connect(), and a
 *    session bus alone lets its caller start any program as the user,
 *    outside every namespace: slirp4netns, which binds all of /run, leaves
 *    that open.
 *
 * The steps, as the launcher calls them:
 *
 *  1. sandbox_join_userns(): when not root, join the user namespace the
 *     attach child joined: --userns-path when given (slirp4netns ignores it
 *     here, its #317, so its path mode cannot be sandboxed unprivileged),
 *     else pid mode's /proc/PID/ns/user. The network namespace stays the
 *     host's: every host socket is still opened there.
 *  2. The launcher opens what Node will need later and cannot open inside:
 *     the API socket (bound and listening), the pcap file.
 *  3. sandbox_enter():
 *     a. unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS); "/" made a
 *        recursive slave at once, so that none of our mount events (the
 *        binds, the detach of the old root) ever propagates back; the new
 *        root is made private once built, so that none of the host's (a new
 *        mount under /etc, say, writable) arrives in it either.
 *     b. O_PATH fds on every bind source, then a small tmpfs on /tmp: sources
 *        under /tmp (a package or resolv.conf there) stay reachable through
 *        /proc/self/fd/N.
 *     c. In the tmpfs: etc and usr bound recursively; lib, lib32, lib64,
 *        libx32 bound or, when the host's are symlinks (merged /usr),
 *        recreated as the same symlinks; the package; node if needed; an
 *        empty run; each file Node reads later (/etc/resolv.conf,
 *        USERNET_RESOLV_CONF, USERNET_POLICY) whose real path is outside /etc
 *        and /usr: under /run its directory
 *        (the managers there replace the file by rename), elsewhere the file
 *        (slirp4netns 1.2.1 does that for /etc/resolv.conf), at the same
 *        path. Each bind, and each mount under it (a recursive bind brings
 *        the submounts, which keep their own flags; slirp4netns leaves them
 *        writable), remounted read-only, nosuid, nodev, and noexec but where
 *        code is mapped from (/usr, the library directories, the package,
 *        node). A remount keeps the mount's atime flags: inside a user
 *        namespace they are locked and the kernel refuses (EPERM) a remount
 *        that would change them.
 *     d. pivot_root into the tmpfs, detach the old root, remount "/"
 *        read-only.
 *     e. PR_SET_NO_NEW_PRIVS; the bounding set emptied but for
 *        CAP_NET_BIND_SERVICE; the ambient set cleared; capset to
 *        CAP_NET_BIND_SERVICE in the effective, permitted and inheritable
 *        sets. Root keeps it across execve(node) through the bounding set;
 *        any other uid (a --userns-path whose namespace does not map us to 0)
 *        through the ambient set, which is raised for it alone.
 *
 * Not done: PR_SET_DUMPABLE 0 (pasta does it). execve resets it, so Node
 * would have to set it, and it would hide /proc/PID/root and the fds from
 * the user who owns the helper, which slirp4netns's own sandbox test (and
 * anyone debugging) reads; seccomp's ptrace denial and the dropped
 * capabilities already keep the helper from reaching other processes.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STAGE "/tmp"

/* A reason for `err`, with strerror(errno) appended when `with_errno`. */
static int fail(char *err, size_t size, int e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(err, size, fmt, ap);
  va_end(ap);
  if (e != 0 && n >= 0 && (size_t)n < size) snprintf(err + n, size - (size_t)n, ": %s", strerror(e));
  return -1;
}

int sandbox_join_userns(const char *userns_path, char *err, size_t err_size) {
  if (geteuid() == 0) return 0;
  if (userns_path == NULL) return fail(err, err_size, 0, "not root, and no user namespace to join (pid mode's, or --userns-path)");
  int fd = open(userns_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(err, err_size, errno, "open %s", userns_path);
  struct stat theirs, ours;
  if (fstat(fd, &theirs) == 0 && stat("/proc/self/ns/user", &ours) == 0 && theirs.st_ino == ours.st_ino &&
      theirs.st_dev == ours.st_dev) {
    close(fd);
    return fail(err, err_size, 0, "not root, and the target's user namespace is ours: nothing to gain the capabilities from");
  }
  int r = setns(fd, CLONE_NEWUSER);
  int e = errno;
  close(fd);
  if (r < 0) return fail(err, err_size, e, "setns(CLONE_NEWUSER)");
  return 0;
}

/* Whether `path` is `dir` or below it. */
static bool under(const char *path, const char *dir) {
  size_t n = strlen(dir);
  return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* The atime and security flags the mount at `path` has now, as MS_* flags
 * (ST_RELATIME is the one whose value differs). */
static unsigned long kept_flags(const char *path) {
  struct statvfs sv;
  if (statvfs(path, &sv) != 0) return 0;
  unsigned long f = 0;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

static int remount_ro(const char *target, unsigned long extra) {
  return mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | extra | kept_flags(target), NULL);
}

/* mkdir -p of `path`'s parents and then `path` itself, as a directory or an
 * empty file (a mount point for a file). */
static int make_point(const char *path, bool dir) {
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  for (char *p = buf + 1; *p != '\0'; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0755) < 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (dir) return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
  int fd = open(buf, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

/* A mountinfo path field, its \ooo escapes decoded in place. */
static void unescape(char *p) {
  char *w = p;
  for (char *r = p; *r != '\0'; r++, w++) {
    if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
      *w = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
      r += 3;
    } else {
      *w = *r;
    }
  }
  *w = '\0';
}

struct mount_line {
  int id, parent;
  bool ro, in_root;
  char *point; /* decoded */
};

/* The binds are recursive, and a recursive bind's submounts (/run/user/UID,
 * /run/netns/NAME, ...) keep their own flags: remount each of them read-only
 * too (slirp4netns leaves them writable). noexec everywhere but where code is
 * mapped from (/usr, the library directories, the package, node). The new
 * root's mounts are told apart by their parent chain, not their path: mounts
 * of the host's own /tmp, now covered, are listed under STAGE too. */
static int remount_submounts_ro(char *err, size_t size) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (f == NULL) return fail(err, size, errno, "open /proc/self/mountinfo");
  struct mount_line *m = NULL;
  size_t n = 0, cap_m = 0;
  char *line = NULL;
  size_t cap = 0;
  int rc = 0;
  while (getline(&line, &cap, f) > 0) {
    /* id parent major:minor root mountpoint options ... */
    char *save = NULL, *mp = NULL, *opts = NULL;
    int id = -1, parent = -1;
    char *tok = strtok_r(line, " ", &save);
    for (int i = 0; tok != NULL && i < 6; i++, tok = strtok_r(NULL, " ", &save)) {
      if (i == 0) id = atoi(tok);
      if (i == 1) parent = atoi(tok);
      if (i == 4) mp = tok;
      if (i == 5) opts = tok;
    }
    if (mp == NULL || opts == NULL) continue;
    if (n == cap_m) {
      size_t c = cap_m == 0 ? 64 : cap_m * 2;
      struct mount_line *g = realloc(m, c * sizeof *m);
      if (g == NULL) {
        rc = fail(err, size, ENOMEM, "read /proc/self/mountinfo");
        break;
      }
      m = g;
      cap_m = c;
    }
    unescape(mp);
    m[n].id = id;
    m[n].parent = parent;
    m[n].ro = strncmp(opts, "ro", 2) == 0 && (opts[2] == ',' || opts[2] == '\0');
    m[n].in_root = false;
    m[n].point = strdup(mp);
    if (m[n].point == NULL) {
      rc = fail(err, size, ENOMEM, "read /proc/self/mountinfo");
      break;
    }
    n++;
  }
  free(line);
  fclose(f);
  /* The stage: the last mount on STAGE (ours, on top of any the host has there). */
  int stage = -1;
  for (size_t i = 0; i < n; i++)
    if (strcmp(m[i].point, STAGE) == 0) stage = m[i].id;
  for (bool grew = true; rc == 0 && grew;) {
    grew = false;
    for (size_t i = 0; i < n; i++) {
      if (m[i].in_root) continue;
      bool child = m[i].parent == stage;
      for (size_t j = 0; !child && j < n; j++) child = m[j].in_root && m[j].id == m[i].parent;
      if (child) m[i].in_root = grew = true;
    }
  }
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (!m[i].in_root || m[i].ro) continue;
    const char *in_root = m[i].point + strlen(STAGE);
    bool code = under(in_root, "/usr") || under(in_root, SANDBOX_PKG_DIR) || strcmp(in_root, SANDBOX_NODE_PATH) == 0 ||
                under(in_root, "/lib") || under(in_root, "/lib32") || under(in_root, "/lib64") || under(in_root, "/libx32");
    if (remount_ro(m[i].point, code ? 0 : MS_NOEXEC) < 0) rc = fail(err, size, errno, "remount %s read-only", in_root);
  }
  for (size_t i = 0; i < n; i++) free(m[i].point);
  free(m);
  return rc;
}

struct bind {
  int fd;                /* O_PATH on the source, taken before STAGE is covered */
  char target[PATH_MAX]; /* in the new root, absolute */
  bool dir;
  bool rec;
  unsigned long extra; /* MS_NOEXEC or 0 */
};

#define MAX_BINDS 16

static int add_bind(struct bind *b, int *n, const char *source, const char *target, unsigned long extra, char *err, size_t size) {
  if (*n >= MAX_BINDS) return fail(err, size, 0, "too many bind mounts");
  struct stat st;
  int fd = open(source, O_PATH | O_CLOEXEC);
  if (fd < 0) return fail(err, size, errno, "open %s", source);
  if (fstat(fd, &st) < 0) {
    int e = errno;
    close(fd);
    return fail(err, size, e, "open %s", source);
  }
  struct bind *x = &b[(*n)++];
  x->fd = fd;
  snprintf(x->target, sizeof x->target, "%s", target);
  x->dir = S_ISDIR(st.st_mode);
  x->rec = x->dir;
  x->extra = extra;
  return 0;
}

int sandbox_enter(const struct sandbox_req *rq, struct sandbox_out *out, char *err, size_t err_size) {
  struct bind binds[MAX_BINDS];
  int n = 0;
  int rc = -1;

  if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) < 0) return fail(err, err_size, errno, "unshare(CLONE_NEWNS|CLONE_NEWIPC|CLONE_NEWUTS)");
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) return fail(err, err_size, errno, "make / a recursive slave");

  /* b. The sources, while every path still means the host's file. */
  char node_real[PATH_MAX], pkg_real[PATH_MAX];
  if (realpath(rq->node, node_real) == NULL) return fail(err, err_size, errno, "realpath %s", rq->node);
  if (realpath(rq->pkg, pkg_real) == NULL) return fail(err, err_size, errno, "realpath %s", rq->pkg);
  if (add_bind(binds, &n, "/etc", "/etc", MS_NOEXEC, err, err_size) < 0 ||
      add_bind(binds, &n, "/usr", "/usr", 0, err, err_size) < 0 ||
      add_bind(binds, &n, pkg_real, SANDBOX_PKG_DIR, 0, err, err_size) < 0)
    goto out;
  snprintf(out->pkg, sizeof out->pkg, "%s", SANDBOX_PKG_DIR);
  if (under(node_real, "/usr")) {
    snprintf(out->node, sizeof out->node, "%s", node_real);
  } else {
    if (add_bind(binds, &n, node_real, SANDBOX_NODE_PATH, 0, err, err_size) < 0) goto out;
    snprintf(out->node, sizeof out->node, "%s", SANDBOX_NODE_PATH);
  }
  /* The library directories: symlinks (merged /usr) recreated, directories bound. */
  static const char *const LIBS[] = {"/lib", "/lib32", "/lib64", "/libx32"};
  char links[4][PATH_MAX];
  bool is_link[4] = {false, false, false, false};
  for (int i = 0; i < 4; i++) {
    struct stat st;
    if (lstat(LIBS[i], &st) < 0) continue;
    if (S_ISLNK(st.st_mode)) {
      ssize_t len = readlink(LIBS[i], links[i], sizeof links[i] - 1);
      if (len < 0) continue;
      links[i][len] = '\0';
      is_link[i] = true;
    } else if (S_ISDIR(st.st_mode) && add_bind(binds, &n, LIBS[i], LIBS[i], 0, err, err_size) < 0) {
      goto out;
    }
  }
  for (int i = 0; i < 3; i++) {
    char real[PATH_MAX];
    if (rq->files[i] == NULL || realpath(rq->files[i], real) == NULL) continue;
    if (under(real, "/etc") || under(real, "/usr")) continue;
    /* Under /run, the managers (systemd-resolved, NetworkManager,
     * resolvconf) replace the file by rename in its own directory: bind the
     * directory, so the forwarder sees the new file. */
    if (under(real, "/run")) *strrchr(real, '/') = '\0';
    bool dup = false;
    for (int j = 0; j < n; j++) dup = dup || strcmp(binds[j].target, real) == 0;
    if (!dup && add_bind(binds, &n, real, real, MS_NOEXEC, err, err_size) < 0) goto out;
  }

  /* c. The new root. */
  if (mount("tmpfs", STAGE, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755") < 0) {
    fail(err, err_size, errno, "mount tmpfs on " STAGE);
    goto out;
  }
  for (int i = 0; i < n; i++) {
    char target[PATH_MAX], source[64];
    snprintf(target, sizeof target, STAGE "%s", binds[i].target);
    snprintf(source, sizeof source, "/proc/self/fd/%d", binds[i].fd);
    if (make_point(target, binds[i].dir) < 0) {
      fail(err, err_size, errno, "create %s", target);
      goto out;
    }
    if (mount(source, target, NULL, MS_BIND | (binds[i].rec ? MS_REC : 0), NULL) < 0) {
      fail(err, err_size, errno, "bind %s", binds[i].target);
      goto out;
    }
    if (remount_ro(target, binds[i].extra) < 0) {
      fail(err, err_size, errno, "remount %s read-only", binds[i].target);
      goto out;
    }
  }
  /* Private: the host's later mounts do not arrive (writable) in here either. */
  if (mount(NULL, STAGE, NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
    fail(err, err_size, errno, "make the new root private");
    goto out;
  }
  if (remount_submounts_ro(err, err_size) < 0) goto out;
  for (int i = 0; i < 4; i++) {
    char target[PATH_MAX];
    snprintf(target, sizeof target, STAGE "%s", LIBS[i]);
    if (is_link[i] && symlink(links[i], target) < 0) {
      fail(err, err_size, errno, "symlink %s", LIBS[i]);
      goto out;
    }
  }
  if (mkdir(STAGE "/run", 0755) < 0 && errno != EEXIST) {
    fail(err, err_size, errno, "mkdir " STAGE "/run");
    goto out;
  }
  if (mkdir(STAGE "/old", 0755) < 0) {
    fail(err, err_size, errno, "mkdir " STAGE "/old");
    goto out;
  }

  /* d. */
  if (chdir(STAGE) < 0 || syscall(SYS_pivot_root, ".", "old") < 0) {
    fail(err, err_size, errno, "pivot_root");
    goto out;
  }
  if (chdir("/") < 0 || umount2("/old", MNT_DETACH) < 0 || rmdir("/old") < 0) {
    fail(err, err_size, errno, "detach the old root");
    goto out;
  }
  if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
    fail(err, err_size, errno, "remount / read-only");
    goto out;
  }

  /* e. */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    fail(err, err_size, errno, "prctl(PR_SET_NO_NEW_PRIVS)");
    goto out;
  }
  for (int cap = 0; cap <= 63; cap++) {
    if (cap == CAP_NET_BIND_SERVICE) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL) break; /* past the kernel's last capability */
      fail(err, err_size, errno, "prctl(PR_CAPBSET_DROP, %d)", cap);
      goto out;
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) {
    fail(err, err_size, errno, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
    goto out;
  }
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) < 0) {
    fail(err, err_size, errno, "capget");
    goto out;
  }
  const uint32_t bind_service = 1u << CAP_NET_BIND_SERVICE;
  const uint32_t keep = data[0].permitted & bind_service;
  memset(data, 0, sizeof data);
  data[0].effective = data[0].permitted = data[0].inheritable = keep;
  if (syscall(SYS_capset, &hdr, data) < 0) {
    fail(err, err_size, errno, "capset");
    goto out;
  }
  if (keep != 0 && geteuid() != 0 && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) < 0) {
    fail(err, err_size, errno, "prctl(PR_CAP_AMBIENT_RAISE)");
    goto out;
  }
  rc = 0;
out:
  for (int i = 0; i < n; i++) close(binds[i].fd);
  return rc;
}
