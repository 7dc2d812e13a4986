/*
 * attach.c: getting a TAP file descriptor out of another network namespace.
 *
 * Size: one file on purpose. The forked child's code must stay
 * async-signal-safe and is shared by the addon and the launcher; the child,
 * its message protocol and the parent's side of it are kept together.
 *
 * Plain C, no N-API: the addon (tap.c, attach()) and the launcher
 * (launcher.c, which attaches before Node starts so that the TAP exists within
 * milliseconds of the spawn) run this same code.
 *
 * Theory of Operation
 * ===================
 *
 * usernet runs in the host's network namespace (every host socket it opens
 * must live there) but its TAP device must live in the container's namespace.
 * A TAP belongs to the namespace it was created in, while the fd that drives it
 * can be used from anywhere. So we only need to *be* in the target namespace
 * for the few system calls that create and configure the device, then carry
 * the fd home. This is what slirp4netns does, and we copy its sequence
 * (slirp4netns 1.2, main.c: the child of its parent/child split) so that the same arguments produce the
 * same devices, the same messages on stderr and the same exit statuses:
 *
 *       caller (host netns)                       child (joins target)
 *       ------------------------                   --------------------
 *       socketpair(AF_UNIX, SOCK_STREAM)
 *       block all signals; fork() ─────────────▶   reset signal handlers
 *       restore signal mask                        open(netns), open(userns)
 *       poll(socket) until the child's end         setns(userns, CLONE_NEWUSER)  (failure ignored)
 *         closes, at most ATTACH_WAIT_MS
 *                                                  setns(netns, CLONE_NEWNET)
 *                                                  open(/dev/net/tun), TUNSETIFF
 *                                                  [vnet hdr: TUNSETVNETHDRSZ, TUNSETVNETLE]
 *                                                  [--configure: lo up, tap up, MTU, MAC,
 *                                                   address, netmask, default route;
 *                                                   IPv6 address + default route]
 *                                                  sendmsg(IPv6 outcome + SCM_RIGHTS fd)
 *                                                  "sent tapfd=N for TAP" on fd 2 (not when quiet)
 *       ◀───────────────────────────────────────   _exit(0)   (any failure: send (step, errno), _exit(1))
 *       waitpid(child)
 *       status != 0  → print "STEP: strerror", throw "child failed(N)"
 *       recvmsg → the fd (now ours), O_NONBLOCK
 *
 * Why a child process, and not setns() on the calling thread:
 *
 * - setns(CLONE_NEWUSER) is refused to a multi-threaded process (the kernel's
 *   userns_install: "Tasks that share a thread group must share a user
 *   namespace", and the fs_struct must not be shared either). Node always has
 *   V8 platform and libuv threads, so only a fresh single-threaded process can
 *   join a rootless container's user namespace, which it needs in order to
 *   hold CAP_NET_ADMIN over that container's network namespace.
 * - Even when no user namespace is involved, switching the namespace of the
 *   thread that runs the event loop would make every socket opened meanwhile
 *   (by any library, on any callback) land in the container. A child cannot
 *   leak that way, and its exit undoes every namespace and credential change.
 *
 * Why fork() and not vfork()/CLONE_VM: older kernels checked a shared mm
 * (mm_users > 1) in userns_install instead of the thread group, so a child
 * sharing our memory fails exactly the join we need there; and a vfork child
 * borrows the stack of the N-API frame that is waiting for it. fork() costs a
 * page-table copy, once per attach.
 *
 * Rules for the child: after fork() in a multi-threaded process only the forking
 * thread exists, and any lock another thread held (malloc, stdio, locale) stays
 * held forever. The child therefore calls only async-signal-safe system calls
 * (open, setns, ioctl, socket, setsockopt, sendto/recv on netlink, sendmsg,
 * write, close, _exit), keeps every buffer on its stack, and formats its one
 * success line by hand. It never looks up an errno's text (strerror() may
 * translate and allocate, and only glibc has the table-only
 * strerrordesc_np()): a failing step sends its number and the errno over the
 * socketpair, and the parent prints slirp4netns's perror() line for it,
 * "STEP: TEXT", in the untranslated English slirp4netns prints (it never
 * calls setlocale()), before it reports "child failed(1)". The line reaches
 * stderr in the same place as when the child printed it.
 *
 * Why signals are blocked across fork(): Node's signal handlers (libuv) write
 * into a pipe shared with the parent. A signal arriving in the child before it
 * reset its handlers would look like a signal to the parent. The child restores
 * default dispositions first and only then unblocks, as posix_spawn does.
 *
 * Why the parent waits before it reads: the fd message sits in the socket
 * buffer until the parent reads it, so waiting for the child's exit first
 * and recvmsg() second is race-free and gives the child's exit status
 * precedence over a missing message, exactly as slirp4netns reports it. The
 * wait blocks the event loop for the child's lifetime (a few ms: the fork and
 * a dozen syscalls); attach happens once, at start-up, before anything else
 * is running.
 *
 * Why the wait is bounded: a child that wedges (a kernel that never answers,
 * a namespace file on a stuck filesystem) would otherwise hang the caller,
 * and with it the whole event loop, forever. The parent polls its end of the
 * socketpair, which reports POLLHUP once the child's end is closed, i.e. when
 * the child exited (the child has the only other copy: it is close-on-exec
 * and the child never execs). After ATTACH_WAIT_MS it kills the child with
 * SIGKILL, reaps it, and fails with a message saying so.
 *
 * IPv6 under --configure (not in slirp4netns, which leaves IPv6 to the
 * guest's SLAAC) comes after the IPv4 steps, through rtnetlink, because the
 * ioctls cannot set address flags: the address with IFA_F_NODAD (duplicate
 * address detection would keep it "tentative", unusable as a source, for a
 * second or more, and nothing else is on this link to collide with), and a
 * static default route (RTPROT_STATIC, metric IPV6_ROUTE_METRIC) via the
 * gateway's link-local address. Unlike the IPv4 steps it never fails the attach: the
 * host may have IPv6 switched off (ipv6.disable=1: EAFNOSUPPORT;
 * disable_ipv6=1 on the device: EACCES) or the MTU may be below 1280 (the
 * kernel then keeps no IPv6 state on the link: EINVAL). The child instead
 * sends the errno of the first IPv6 step that failed (0: configured, or not
 * asked) as the payload of its fd message, and attach returns it as
 * ipv6Errno, for the caller to print one notice and go on with IPv4. EEXIST
 * for the route counts as done: a default route of that metric is already
 * there (a persistent TAP configured before).
 *
 * Why metric 1023 and not the usual 1024: a default route the kernel learns
 * from a Router Advertisement gets metric 1024 (accept_ra_defrtr_metric). Had
 * ours the same metric and gateway, the kernel's RA processing would fail to
 * add its route with EEXIST, log "ICMPv6: RA: ndisc_router_discovery failed
 * to add default route" and abandon the rest of that RA: its hop limit, MTU,
 * prefix and RDNSS options would be ignored (measured on Linux 6.18). With
 * 1023 the RA is processed in full, its route (proto ra, 1024) coexists with
 * ours, and ours, static, is preferred (test/e2e/tap.test.ts checks both).
 *
 * The fd arrives with MSG_CMSG_CLOEXEC (it must not leak into processes the
 * embedding application spawns) and is then made non-blocking for io.c.
 */
#include "attach.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

/* The IPv6 default route's metric under --configure: one below the
 * kernel's for routes learned from Router Advertisements (see above). */
#define IPV6_ROUTE_METRIC 1023

/* How long the parent waits for the child before it kills it. A healthy
 * child takes a few ms. The slowest legitimate one waits on the kernel: its
 * ioctls and rtnetlink requests take the rtnl lock, which a busy host holds
 * for seconds at a time while it tears down network namespaces, and each
 * of its two netlink acks may take up to its 2 s receive timeout. 30 s is
 * far beyond all of that, yet bounds the start-up of a helper that would
 * otherwise never report anything. */
#define ATTACH_WAIT_MS 30000

/* Where the child failed: the parent prints step_what(step) as perror's
 * prefix. Sent as a number, so the child never formats an errno. */
enum child_step {
  STEP_OPEN_NETNS, /* the netns path itself */
  STEP_OPEN_USERNS, /* the userns path itself */
  STEP_SETNS_NET,
  STEP_OPEN_TUN,
  STEP_TUNSETIFF,
  STEP_TUNSETVNETHDRSZ,
  STEP_TUNSETVNETLE,
  STEP_CFG_SOCKET,
  STEP_CFG_UP,
  STEP_CFG_MTU,
  STEP_CFG_MAC,
  STEP_CFG_ADDR,
  STEP_CFG_NETMASK,
  STEP_CFG_ROUTE,
  STEP_SENDMSG,
  STEP_COUNT,
};

/* slirp4netns's perror() prefixes, same wording. */
static const char *const STEP_TEXT[STEP_COUNT] = {
    [STEP_SETNS_NET] = "setns(CLONE_NEWNET)",
    [STEP_OPEN_TUN] = "open(\"/dev/net/tun\")",
    [STEP_TUNSETIFF] = "ioctl(TUNSETIFF)",
    [STEP_TUNSETVNETHDRSZ] = "ioctl(TUNSETVNETHDRSZ)",
    [STEP_TUNSETVNETLE] = "ioctl(TUNSETVNETLE)",
    [STEP_CFG_SOCKET] = "cannot create socket",
    [STEP_CFG_UP] = "cannot set device up",
    [STEP_CFG_MTU] = "cannot set MTU",
    [STEP_CFG_MAC] = "cannot set MAC address",
    [STEP_CFG_ADDR] = "cannot set device address",
    [STEP_CFG_NETMASK] = "cannot set device netmask",
    [STEP_CFG_ROUTE] = "set route",
    [STEP_SENDMSG] = "sendmsg",
};

static const char *step_what(const struct attach_req *rq, int32_t step) {
  if (step == STEP_OPEN_NETNS) return rq->netns;
  if (step == STEP_OPEN_USERNS) return rq->userns;
  return step > STEP_OPEN_USERNS && step < STEP_COUNT ? STEP_TEXT[step] : NULL;
}

/* The child's failure report: two int32, (step, errno). */
struct child_failure {
  int32_t step;
  int32_t err;
};


/* ---------------------------------------------------------------------------
 * Child side: async-signal-safe only (see Theory of Operation).
 */

struct child_msg {
  char buf[PATH_MAX + 256];
  size_t len;
};

static void msg_str(struct child_msg *m, const char *s) {
  while (*s != '\0' && m->len < sizeof m->buf - 1) m->buf[m->len++] = *s++;
}

static void msg_uint(struct child_msg *m, unsigned long v) {
  char digits[24];
  size_t n = 0;
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0 && m->len < sizeof m->buf - 1) m->buf[m->len++] = digits[--n];
}

/* The English text of errno values, as perror() prints it in the C locale;
 * NULL for unknown values. For the parent only: strerror() may allocate. */
const char *errno_text(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  return strerrordesc_np(err);
#else
  /* Without glibc's strerrordesc_np, strerror is the closest portable text. */
  return strerror(err);
#endif
}

static void write_all(int fd, const char *p, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t r = write(fd, p + off, len - off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return;
    off += (size_t)r;
  }
}

static void msg_write_stderr(struct child_msg *m) {
  m->buf[m->len++] = '\n';
  write_all(STDERR_FILENO, m->buf, m->len);
}

/* What child_fail() needs: the socket to the parent, and the paths. */
struct child {
  int sock;
  const struct attach_req *rq;
};

/* Reports (step, err) to the parent, which prints perror's line, then
 * _exit(1): the status slirp4netns's child exits with. If even that send
 * fails, the line goes to stderr from here, with the errno as a number. */
__attribute__((noreturn)) static void child_fail(const struct child *c, enum child_step step, int err) {
  struct child_failure f = {.step = (int32_t)step, .err = (int32_t)err};
  ssize_t r;
  do {
    r = send(c->sock, &f, sizeof f, MSG_NOSIGNAL);
  } while (r < 0 && errno == EINTR);
  if (r != (ssize_t)sizeof f) {
    struct child_msg m = {.len = 0};
    msg_str(&m, step_what(c->rq, step));
    msg_str(&m, ": errno ");
    msg_uint(&m, (unsigned long)err);
    msg_write_stderr(&m);
  }
  _exit(1);
}

static void child_reset_signals(const sigset_t *parent_mask) {
  for (int sig = 1; sig < NSIG; sig++) {
    struct sigaction sa;
    if (sigaction(sig, NULL, &sa) != 0) continue;
    /* Ignored signals stay ignored (SIGPIPE in Node), as across exec. */
    if (sa.sa_handler == SIG_IGN || sa.sa_handler == SIG_DFL) continue;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
  }
  sigprocmask(SIG_SETMASK, parent_mask, NULL);
}

static void set_sin(struct sockaddr *sa, uint32_t addr_host_order) {
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(addr_host_order);
  memcpy(sa, &sin, sizeof sin);
}

/* Netlink requests of the child: one message on the stack, acknowledged. */
union nl_buf {
  struct nlmsghdr h;
  char buf[256];
};

/* Starts a request of `type` with `payload_len` zeroed bytes of family
 * header (ifaddrmsg, rtmsg), returned. */
static void *nl_begin(union nl_buf *m, uint16_t type, uint16_t flags, size_t payload_len) {
  memset(m, 0, sizeof *m);
  m->h.nlmsg_len = NLMSG_LENGTH(payload_len);
  m->h.nlmsg_type = type;
  m->h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  return NLMSG_DATA(&m->h);
}

/* Appends attribute `type`; false when it would not fit (cannot happen with
 * the fixed requests below, but the buffer is bounded all the same). */
static bool nl_put(union nl_buf *m, uint16_t type, const void *data, size_t len) {
  size_t off = NLMSG_ALIGN(m->h.nlmsg_len);
  if (off + RTA_SPACE(len) > sizeof m->buf) return false;
  struct rtattr *rta = (struct rtattr *)(m->buf + off);
  rta->rta_type = type;
  rta->rta_len = (unsigned short)RTA_LENGTH(len);
  memcpy(RTA_DATA(rta), data, len);
  m->h.nlmsg_len = (uint32_t)(off + RTA_SPACE(len));
  return true;
}

/* Sends the request and reads its acknowledgement: 0, or the errno the
 * kernel answered (or of the exchange itself). Every length in the answer is
 * checked before it is read; at most a few datagrams are read, and the
 * socket's receive timeout bounds each wait. */
static int nl_request(int nl, union nl_buf *m, uint32_t seq) {
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  m->h.nlmsg_seq = seq;
  ssize_t r;
  do {
    r = sendto(nl, m->buf, m->h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return errno;
  if ((size_t)r != m->h.nlmsg_len) return EIO;
  for (int tries = 0; tries < 4; tries++) {
    union nl_buf ack;
    do {
      r = recv(nl, ack.buf, sizeof ack.buf, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
    size_t left = (size_t)r;
    for (struct nlmsghdr *h = &ack.h; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != seq || h->nlmsg_type != NLMSG_ERROR) continue;
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) return EPROTO;
      struct nlmsgerr e;
      memcpy(&e, NLMSG_DATA(h), sizeof e);
      return e.error <= 0 ? -e.error : EPROTO;
    }
  }
  return EPROTO;
}

/* --configure's IPv6 part (see Theory of Operation): 0, or the errno of the
 * first step that failed. Never exits the child. */
static int child_configure6(const struct attach_req *rq, const uint8_t addr6[16], int ifindex) {
  int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (nl < 0) return errno;
  /* The kernel answers inside sendto, so the ack is queued by the time we
   * read; the timeout only bounds a kernel that would not. */
  struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
  (void)setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const uint32_t nodad = IFA_F_NODAD, oif = (uint32_t)ifindex, metric = IPV6_ROUTE_METRIC;

  union nl_buf m;
  struct ifaddrmsg *ifa = nl_begin(&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, sizeof *ifa);
  ifa->ifa_family = AF_INET6;
  ifa->ifa_prefixlen = (uint8_t)rq->prefix6;
  ifa->ifa_flags = IFA_F_NODAD;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = oif;
  int e = nl_put(&m, IFA_LOCAL, addr6, 16) && nl_put(&m, IFA_FLAGS, &nodad, sizeof nodad) ? nl_request(nl, &m, 1)
                                                                                                 : EMSGSIZE;
  if (e == 0) {
    struct rtmsg *rt = nl_begin(&m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, sizeof *rt);
    rt->rtm_family = AF_INET6;
    rt->rtm_table = RT_TABLE_MAIN;
    rt->rtm_protocol = RTPROT_STATIC;
    rt->rtm_scope = RT_SCOPE_UNIVERSE;
    rt->rtm_type = RTN_UNICAST;
    e = nl_put(&m, RTA_GATEWAY, rq->gateway6, 16) && nl_put(&m, RTA_OIF, &oif, sizeof oif) &&
                nl_put(&m, RTA_PRIORITY, &metric, sizeof metric)
            ? nl_request(nl, &m, 2)
            : EMSGSIZE;
    if (e == EEXIST) e = 0;
  }
  close(nl);
  return e;
}

/* slirp4netns's configure_network(), same order and same messages
 * (slirp4netns 1.2), then the IPv6 part when asked. Exits the
 * child on the first IPv4 failure; returns the IPv6 outcome (0 or an errno). */
static int child_configure(const struct child *c) {
  const struct attach_req *rq = c->rq;
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) child_fail(c, STEP_CFG_SOCKET, errno);

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, "lo", 3);
  ifr.ifr_flags = IFF_UP | IFF_RUNNING;
  if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) child_fail(c, STEP_CFG_UP, errno);

  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, rq->ifname, sizeof ifr.ifr_name);
  ifr.ifr_flags = IFF_UP | IFF_RUNNING;
  if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) child_fail(c, STEP_CFG_UP, errno);

  ifr.ifr_mtu = (int)rq->mtu;
  if (ioctl(sock, SIOCSIFMTU, &ifr) < 0) child_fail(c, STEP_CFG_MTU, errno);

  if (rq->has_mac) {
    /* The kernel requires sa_family == dev->type (ARPHRD_ETHER for a TAP). */
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    memcpy(ifr.ifr_hwaddr.sa_data, rq->mac, 6);
    if (ioctl(sock, SIOCSIFHWADDR, &ifr) < 0) child_fail(c, STEP_CFG_MAC, errno);
  }

  set_sin(&ifr.ifr_addr, rq->addr);
  if (ioctl(sock, SIOCSIFADDR, &ifr) < 0) child_fail(c, STEP_CFG_ADDR, errno);

  set_sin(&ifr.ifr_netmask, rq->netmask);
  if (ioctl(sock, SIOCSIFNETMASK, &ifr) < 0) child_fail(c, STEP_CFG_NETMASK, errno);

  struct rtentry route;
  memset(&route, 0, sizeof route);
  set_sin(&route.rt_gateway, rq->gateway);
  set_sin(&route.rt_dst, 0);
  set_sin(&route.rt_genmask, 0);
  route.rt_flags = RTF_UP | RTF_GATEWAY;
  route.rt_metric = 0;
  route.rt_dev = (char *)rq->ifname;
  if (ioctl(sock, SIOCADDRT, &route) < 0) child_fail(c, STEP_CFG_ROUTE, errno);

  int ipv6_errno = 0;
  if (rq->has_ipv6) {
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, rq->ifname, sizeof ifr.ifr_name);
    /* An address whose interface identifier is all zeros asks for the one
     * SLAAC would form: the modified EUI-64 of the TAP's MAC (RFC 4291
     * App. A), which only this child knows when the kernel chose the MAC. */
    uint8_t addr6[16];
    memcpy(addr6, rq->addr6, 16);
    bool want_eui64 = true;
    for (int i = 8; i < 16; i++) want_eui64 = want_eui64 && addr6[i] == 0;
    if (want_eui64 && ioctl(sock, SIOCGIFHWADDR, &ifr) == 0) {
      const uint8_t *mac = (const uint8_t *)ifr.ifr_hwaddr.sa_data;
      addr6[8] = mac[0] ^ 0x02;
      addr6[9] = mac[1];
      addr6[10] = mac[2];
      addr6[11] = 0xff;
      addr6[12] = 0xfe;
      addr6[13] = mac[3];
      addr6[14] = mac[4];
      addr6[15] = mac[5];
    }
    ipv6_errno = ioctl(sock, SIOCGIFINDEX, &ifr) < 0 ? errno : child_configure6(rq, addr6, ifr.ifr_ifindex);
  }
  close(sock);
  return ipv6_errno;
}

/* The one message of the attach: an int32 payload and room for one fd. */
struct fd_msg {
  struct iovec iov;
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  struct msghdr msg;
};

static void fd_msg_init(struct fd_msg *m, int32_t *payload) {
  memset(m, 0, sizeof *m);
  m->iov.iov_base = payload;
  m->iov.iov_len = sizeof *payload;
  m->msg.msg_iov = &m->iov;
  m->msg.msg_iovlen = 1;
  m->msg.msg_control = m->control.buf;
  m->msg.msg_controllen = sizeof m->control.buf;
}

/* The payload of the fd message (a stream socket cannot carry ancillary data
 * alone): the IPv6 outcome of --configure, 0 when configured or not asked. */
static int child_send_fd(int sock, int fd, int32_t ipv6_errno) {
  struct fd_msg m;
  fd_msg_init(&m, &ipv6_errno);
  struct msghdr *msg = &m.msg;
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
  ssize_t r;
  do {
    r = sendmsg(sock, msg, MSG_NOSIGNAL);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -1 : 0;
}

__attribute__((noreturn)) static void attach_child(int sock, const struct attach_req *rq,
                                                   const sigset_t *parent_mask) {
  const struct child ctx = {.sock = sock, .rq = rq}, *c = &ctx;
  child_reset_signals(parent_mask);
  /* Tests only (attach_req): a child that never finishes. */
  if (rq->test_stall)
    for (;;) pause();

  /* O_NONBLOCK only so that a FIFO given as a namespace path fails in setns()
   * instead of hanging us (and the parent in waitpid) in open(). */
  int netnsfd = open(rq->netns, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (netnsfd < 0) child_fail(c, STEP_OPEN_NETNS, errno);
  int usernsfd = -1;
  if (rq->has_userns) {
    usernsfd = open(rq->userns, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (usernsfd < 0) child_fail(c, STEP_OPEN_USERNS, errno);
  }
  if (usernsfd >= 0) {
    /* Ignored like slirp4netns: real root may not need it, and joining the
     * namespace we already are in fails with EINVAL. */
    (void)setns(usernsfd, CLONE_NEWUSER);
    close(usernsfd);
  }
  if (setns(netnsfd, CLONE_NEWNET) < 0) child_fail(c, STEP_SETNS_NET, errno);
  close(netnsfd);

  int tapfd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (tapfd < 0) child_fail(c, STEP_OPEN_TUN, errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, rq->ifname, sizeof ifr.ifr_name);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (rq->vnet_hdr ? IFF_VNET_HDR : 0);
  /* Creates the device, or attaches to a persistent one nobody holds (what
   * RootlessKit pre-creates); EBUSY when another fd is attached. */
  if (ioctl(tapfd, TUNSETIFF, &ifr) < 0) child_fail(c, STEP_TUNSETIFF, errno);

  if (rq->vnet_hdr) {
    int hdr_len = VNET_HDR_LEN;
    if (ioctl(tapfd, TUNSETVNETHDRSZ, &hdr_len) < 0) child_fail(c, STEP_TUNSETVNETHDRSZ, errno);
    /* The JS side reads and writes the header little-endian (the virtio 1.0
     * rule); this makes the kernel agree on big-endian hosts too. Kernels
     * without the ioctl only run little-endian legacy headers anyway. */
    int le = 1;
    if (ioctl(tapfd, TUNSETVNETLE, &le) < 0 && errno != EINVAL && errno != ENOTTY)
      child_fail(c, STEP_TUNSETVNETLE, errno);
  }

  int ipv6_errno = rq->configure ? child_configure(c) : 0;

  if (child_send_fd(sock, tapfd, ipv6_errno) < 0) child_fail(c, STEP_SENDMSG, errno);

  if (!rq->quiet) {
    struct child_msg m = {.len = 0};
    msg_str(&m, "sent tapfd=");
    msg_uint(&m, (unsigned long)tapfd);
    msg_str(&m, " for ");
    msg_str(&m, rq->tapname);
    msg_write_stderr(&m);
  }
  _exit(0);
}

/* ---------------------------------------------------------------------------
 * Parent side (the Node main thread, or the launcher before Node starts).
 */

void attach_set_ifname(struct attach_req *rq) {
  memset(rq->ifname, 0, sizeof rq->ifname);
  memcpy(rq->ifname, rq->tapname, strnlen(rq->tapname, IFNAMSIZ - 1));
}

static void parent_failed(struct attach_result *out, const char *what, int err) {
  const char *desc = errno_text(err);
  if (err != 0 && desc != NULL)
    snprintf(out->message, sizeof out->message, "%s: %s", what, desc);
  else if (err != 0)
    snprintf(out->message, sizeof out->message, "%s: Unknown error %d", what, err);
  else
    snprintf(out->message, sizeof out->message, "%s", what);
  out->outcome = ATTACH_PARENT_FAILED;
  out->exit_status = 1;
  out->err = err;
}

/* Takes the fd (and the child's IPv6 outcome) out of its message; false
 * after parent_failed(), with any fd that came along closed. */
static bool receive_fd(int sock, struct attach_result *out) {
  int32_t ipv6_errno = 0;
  struct fd_msg m;
  fd_msg_init(&m, &ipv6_errno);
  struct msghdr *msg = &m.msg;
  ssize_t r;
  /* The child has exited: the message is either queued or never coming, so a
   * blocking read could only hang on a bug. */
  do {
    r = recvmsg(sock, msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    parent_failed(out, "recvmsg", errno);
    return false;
  }
  /* Whatever else is wrong with the message, an fd it carried is ours now. */
  int fd = -1;
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(msg);
  bool one_fd = cmsg != NULL && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
                cmsg->cmsg_len == CMSG_LEN(sizeof(int));
  if (one_fd) memcpy(&fd, CMSG_DATA(cmsg), sizeof fd);
  const char *wrong = NULL;
  if (r == 0)
    wrong = "the message is empty";
  /* The child writes the whole int in one sendmsg on a stream socket that
   * holds nothing else; short means it is not our child's message. */
  else if (r != sizeof ipv6_errno)
    wrong = "the message is truncated";
  else if (!one_fd)
    wrong = "the message does not contain fd";
  if (wrong != NULL) {
    if (fd >= 0) close(fd);
    parent_failed(out, wrong, 0);
    return false;
  }
  out->fd = fd;
  out->ipv6_errno = ipv6_errno;
  return true;
}

/* The child's failure report, printed as slirp4netns's child prints it with
 * perror(): "STEP: TEXT" on stderr. Nothing when there is none (the child
 * then printed what it could itself). */
static void print_child_failure(int sock, const struct attach_req *rq) {
  struct child_failure f;
  ssize_t r;
  do {
    r = recv(sock, &f, sizeof f, MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  const char *what = r == (ssize_t)sizeof f ? step_what(rq, f.step) : NULL;
  if (what == NULL) return;
  char line[PATH_MAX + 128];
  const char *desc = errno_text(f.err);
  int n = desc != NULL ? snprintf(line, sizeof line, "%s: %s\n", what, desc)
                       : snprintf(line, sizeof line, "%s: Unknown error %d\n", what, (int)f.err);
  if (n > 0) write_all(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static int64_t monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until the child has closed its end of `sock` (it exits: see Theory
 * of Operation), at most `wait_ms`. 0 when it did, ETIMEDOUT, or the errno
 * of poll. */
static int wait_child_hangup(int sock, uint32_t wait_ms) {
  const int64_t deadline = monotonic_ms() + wait_ms;
  /* events 0: only POLLHUP and POLLERR wake us, never the queued message. */
  struct pollfd pfd = {.fd = sock, .events = 0, .revents = 0};
  for (;;) {
    int64_t left = deadline - monotonic_ms();
    if (left < 0) left = 0;
    int r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
    if (r > 0) return 0;
    if (r == 0) return ETIMEDOUT;
    if (errno != EINTR) return errno;
  }
}

/* waitpid, retried on EINTR: 0 or the errno. */
static int reap(pid_t pid, int *wstatus) {
  pid_t w;
  do {
    w = waitpid(pid, wstatus, 0);
  } while (w < 0 && errno == EINTR);
  return w < 0 ? errno : 0;
}

void attach_run(const struct attach_req *rq, struct attach_result *out) {
  memset(out, 0, sizeof *out);
  out->fd = -1;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    parent_failed(out, "socketpair", errno);
    return;
  }

  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    attach_child(sv[1], rq, &old);
  }
  int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    parent_failed(out, "fork", fork_errno);
    return;
  }

  int wstatus = 0;
  const uint32_t wait_ms = rq->wait_ms != 0 ? rq->wait_ms : ATTACH_WAIT_MS;
  int e = wait_child_hangup(sv[0], wait_ms);
  if (e != 0) {
    /* Another process may hold a copy of the child's end for a moment (a
     * fork elsewhere in this process, before its exec): the child may have
     * exited all the same. Otherwise it is wedged, and SIGKILL cannot be
     * ignored: the reap below returns once the kernel has ended it. */
    pid_t w;
    do {
      w = waitpid(pid, &wstatus, WNOHANG);
    } while (w < 0 && errno == EINTR);
    if (w == 0) {
      kill(pid, SIGKILL);
      (void)reap(pid, &wstatus);
      close(sv[0]);
      if (e == ETIMEDOUT) {
        snprintf(out->message, sizeof out->message, "the attach child did not finish within %u ms: killed",
                 (unsigned)wait_ms);
        out->outcome = ATTACH_PARENT_FAILED;
        out->exit_status = 1;
        out->err = ETIMEDOUT;
      } else {
        parent_failed(out, "poll", e);
      }
      return;
    }
    if (w < 0) {
      e = errno;
      close(sv[0]);
      parent_failed(out, "waitpid", e);
      return;
    }
  } else if ((e = reap(pid, &wstatus)) != 0) {
    close(sv[0]);
    parent_failed(out, "waitpid", e);
    return;
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    if (WIFEXITED(wstatus)) print_child_failure(sv[0], rq);
    close(sv[0]);
    out->outcome = ATTACH_CHILD_FAILED;
    if (!WIFEXITED(wstatus)) {
      snprintf(out->message, sizeof out->message, "child failed(wstatus=%d, !WIFEXITED)", wstatus);
      out->exit_status = 1;
    } else {
      snprintf(out->message, sizeof out->message, "child failed(%d)", WEXITSTATUS(wstatus));
      out->exit_status = WEXITSTATUS(wstatus);
    }
    return;
  }

  bool received = receive_fd(sv[0], out);
  close(sv[0]);
  if (!received) return;

  int fl = fcntl(out->fd, F_GETFL);
  if (fl < 0 || fcntl(out->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    int e2 = errno;
    close(out->fd);
    out->fd = -1;
    parent_failed(out, "fcntl(O_NONBLOCK)", e2);
    return;
  }
  out->outcome = ATTACH_OK;
}
