/*
 * --enable-seccomp: a classic BPF seccomp filter over the whole process.
 *
 * Why a denylist. pasta confines itself with an allowlist of about forty
 * syscalls; that is possible for a small C program whose every call is known
 * from its source. In Node the calls come from V8 (JIT mappings, mprotect,
 * madvise, signals), libuv (epoll or io_uring, eventfd, the thread pool),
 * glibc (futex, getrandom, rseq, clone3) and OpenSSL, and which ones depends
 * on the Node, libuv, glibc and kernel versions and on paths a test run may
 * not take (a Worker, the inspector, a heap snapshot, io_uring's fallback):
 * one helper run with traffic used 72 distinct syscalls (38 after the
 * install), traced with strace on Node 20. An allowlist would kill the
 * helper, and the container's network with it, on the first call nobody
 * traced. So this filter does what
 * slirp4netns does: allow by default, and kill the process on the syscalls a
 * network helper never needs and an attacker who took over the process would
 * want next:
 *
 *   - running other code: execve, execveat (no shell, no new binary);
 *   - reaching into other processes: ptrace, process_vm_readv/writev,
 *     pidfd_open, pidfd_getfd, pidfd_send_signal;
 *   - the kernel itself: init_module, finit_module, delete_module,
 *     kexec_load, kexec_file_load, reboot, lookup_dcookie;
 *   - the file-system view: mount, umount(2), pivot_root, chroot, the new
 *     mount API (fsopen, fsconfig, fsmount, fspick, move_mount, open_tree),
 *     open_by_handle_at / name_to_handle_at (which escape a chroot or a bind
 *     mount by inode handle);
 *   - namespaces: setns, unshare (the helper runs in the host network
 *     namespace, often with the user namespace's capabilities);
 *   - prctl, except PR_SET_NAME / PR_GET_NAME: libuv >= 1.50 (Node 22 and
 *     later) names each thread it starts through pthread_setname_np, which
 *     glibc implements as prctl(PR_SET_NAME) on the calling thread. (Node 20's
 *     libuv 1.46 makes no prctl call at all once the helper is running:
 *     traced over a run with TCP, UDP, DNS, ICMP and a port forward.)
 *     Everything else (PR_SET_SECCOMP, PR_SET_DUMPABLE, PR_CAP_AMBIENT,
 *     PR_SET_MM, ...) kills.
 *
 * What it does not protect: the process can still open files and sockets,
 * connect anywhere and write wherever its uid may. That is the job of
 * --enable-sandbox (mount namespace, capabilities), not of this filter.
 *
 * The filter starts with the architecture check every seccomp filter needs:
 * syscall numbers differ between ABIs, so a call made through a foreign one
 * (int 0x80 with i386 numbers on x86_64, or the x32 ABI's numbers with bit 30
 * set) would slip past a number comparison. Both kill the process.
 *
 * SECCOMP_FILTER_FLAG_TSYNC applies the filter to every thread of the
 * process at once (Node has about eleven before any JS runs: the libuv
 * pool, V8's platform workers, the inspector's); without it only the calling
 * thread would be filtered. TSYNC also sets no_new_privs on each of them.
 *
 * Call it once everything that needs a blocked syscall is done: the attach
 * child (fork, setns) has exited and run mode, which spawns `unshare`, never
 * calls it.
 */
#include "addon.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define SECCOMP_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__) && defined(__AARCH64EL__)
#define SECCOMP_ARCH AUDIT_ARCH_AARCH64
#endif

#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif

typedef struct {
  const char *name;
  int nr;
} syscall_entry;

#define SC(n) {#n, __NR_##n}

/* slirp4netns 1.2's list, in the order its banner prints it; each guarded,
 * since an architecture may lack one (x86_64 and aarch64 have no umount,
 * only umount2). */
static const syscall_entry blocked[] = {
#ifdef __NR_execve
    SC(execve),
#endif
#ifdef __NR_lookup_dcookie
    SC(lookup_dcookie),
#endif
#ifdef __NR_pidfd_getfd
    SC(pidfd_getfd),
#endif
#ifdef __NR_ptrace
    SC(ptrace),
#endif
#ifdef __NR_process_vm_readv
    SC(process_vm_readv),
#endif
#ifdef __NR_process_vm_writev
    SC(process_vm_writev),
#endif
#ifdef __NR_delete_module
    SC(delete_module),
#endif
#ifdef __NR_finit_module
    SC(finit_module),
#endif
#ifdef __NR_init_module
    SC(init_module),
#endif
#ifdef __NR_chroot
    SC(chroot),
#endif
#ifdef __NR_fsconfig
    SC(fsconfig),
#endif
#ifdef __NR_fsmount
    SC(fsmount),
#endif
#ifdef __NR_fsopen
    SC(fsopen),
#endif
#ifdef __NR_fspick
    SC(fspick),
#endif
#ifdef __NR_mount
    SC(mount),
#endif
#ifdef __NR_move_mount
    SC(move_mount),
#endif
#ifdef __NR_open_tree
    SC(open_tree),
#endif
#ifdef __NR_pivot_root
    SC(pivot_root),
#endif
#ifdef __NR_umount
    SC(umount),
#endif
#ifdef __NR_umount2
    SC(umount2),
#endif
#ifdef __NR_open_by_handle_at
    SC(open_by_handle_at),
#endif
#ifdef __NR_execveat
    SC(execveat),
#endif
#ifdef __NR_pidfd_open
    SC(pidfd_open),
#endif
#ifdef __NR_pidfd_send_signal
    SC(pidfd_send_signal),
#endif
    /* prctl is filtered by option below; it stands here for the banner. */
    SC(prctl),
#ifdef __NR_setns
    SC(setns),
#endif
#ifdef __NR_unshare
    SC(unshare),
#endif
#ifdef __NR_kexec_file_load
    SC(kexec_file_load),
#endif
#ifdef __NR_kexec_load
    SC(kexec_load),
#endif
#ifdef __NR_reboot
    SC(reboot),
#endif
#ifdef __NR_name_to_handle_at
    SC(name_to_handle_at),
#endif
};

#define N_BLOCKED (sizeof blocked / sizeof blocked[0])

/* The prctl options still allowed, with the reason each one is needed. */
static const struct {
  const char *name;
  int option;
} prctl_allowed[] = {
    /* pthread_setname_np / pthread_getname_np on the calling thread, which
     * glibc turns into these: libuv >= 1.50's uv_thread_setname names the
     * pool's threads and Worker threads as they start. */
    {"PR_SET_NAME", PR_SET_NAME},
    {"PR_GET_NAME", PR_GET_NAME},
};

#define N_PRCTL_ALLOWED (sizeof prctl_allowed / sizeof prctl_allowed[0])

#ifdef SECCOMP_ARCH

/* Jump targets resolved when the program is finished. */
enum { TO_NEXT = 0, TO_ALLOW = 1, TO_KILL = 2 };

typedef struct {
  struct sock_filter insn[128];
  unsigned char jt[128], jf[128];
  size_t len;
} program;

static void emit(program *p, uint16_t code, uint32_t k, unsigned char jt, unsigned char jf) {
  p->insn[p->len] = (struct sock_filter)BPF_STMT(code, k);
  p->jt[p->len] = jt;
  p->jf[p->len] = jf;
  p->len++;
}

/* The last two instructions are ALLOW then KILL; turn the symbolic targets
 * into the 8-bit relative offsets classic BPF wants. */
static void resolve(program *p) {
  size_t allow = p->len - 2, kill = p->len - 1;
  for (size_t i = 0; i < p->len; i++) {
    if (BPF_CLASS(p->insn[i].code) != BPF_JMP) continue;
    p->insn[i].jt = p->jt[i] == TO_ALLOW ? (uint8_t)(allow - i - 1) : p->jt[i] == TO_KILL ? (uint8_t)(kill - i - 1) : 0;
    p->insn[i].jf = p->jf[i] == TO_ALLOW ? (uint8_t)(allow - i - 1) : p->jf[i] == TO_KILL ? (uint8_t)(kill - i - 1) : 0;
  }
}

/* args[0]'s low 32 bits: prctl's option is an int. */
#define ARG0_LO offsetof(struct seccomp_data, args[0])
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "seccomp.c reads the low word of args[0] at its little-endian offset"
#endif

static void build(program *p) {
  p->len = 0;
  emit(p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), 0, 0);
  emit(p, BPF_JMP | BPF_JEQ | BPF_K, SECCOMP_ARCH, TO_NEXT, TO_KILL);
  emit(p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0);
#ifdef __x86_64__
  emit(p, BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, TO_KILL, TO_NEXT);
#endif
  for (size_t i = 0; i < N_BLOCKED; i++) {
    if (blocked[i].nr == __NR_prctl) continue;
    emit(p, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)blocked[i].nr, TO_KILL, TO_NEXT);
  }
  emit(p, BPF_JMP | BPF_JEQ | BPF_K, __NR_prctl, TO_NEXT, TO_ALLOW);
  emit(p, BPF_LD | BPF_W | BPF_ABS, ARG0_LO, 0, 0);
  for (size_t i = 0; i < N_PRCTL_ALLOWED; i++)
    emit(p, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)prctl_allowed[i].option, TO_ALLOW, TO_NEXT);
  emit(p, BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS, 0, 0); /* prctl, any other option */
  emit(p, BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
  emit(p, BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS, 0, 0);
  resolve(p);
}

/* 0, or -errno: the errno of PR_SET_NO_NEW_PRIVS or seccomp(2) (EINVAL or
 * ENOSYS: a kernel without seccomp filters, or without TSYNC or
 * KILL_PROCESS); -ESRCH when TSYNC could not reach a thread (the kernel
 * returns that thread's id: one of them already has a different filter). */
static int install(void) {
  static program p;
  build(&p);
  struct sock_fprog prog = {.len = (unsigned short)p.len, .filter = p.insn};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
  long r = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
  if (r < 0) return -errno;
  if (r > 0) return -ESRCH;
  return 0;
}

#else

static int install(void) { return -ENOSYS; }

#endif

/* installSeccomp() -> 0 | -errno. */
static napi_value js_install_seccomp(napi_env env, napi_callback_info info) {
  (void)info;
  return make_int(env, install());
}

/* The `name` members of a table of n entries `stride` bytes apart, as a JS
 * array of strings. */
static napi_value name_array(napi_env env, const char *const *first, size_t n, size_t stride) {
  napi_value arr, s;
  NAPI_CALL(env, napi_create_array_with_length(env, n, &arr));
  for (size_t i = 0; i < n; i++) {
    const char *name = *(const char *const *)((const char *)first + i * stride);
    NAPI_CALL(env, napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &s));
    NAPI_CALL(env, napi_set_element(env, arr, (uint32_t)i, s));
  }
  return arr;
}

/* seccompBlocked() -> the names the filter kills on, in slirp4netns's banner
 * order (prctl included: it is killed for every option but the allowed ones). */
static napi_value js_seccomp_blocked(napi_env env, napi_callback_info info) {
  (void)info;
  return name_array(env, &blocked[0].name, N_BLOCKED, sizeof blocked[0]);
}

/* seccompPrctlAllowed() -> the prctl options left allowed, by name. */
static napi_value js_seccomp_prctl_allowed(napi_env env, napi_callback_info info) {
  (void)info;
  return name_array(env, &prctl_allowed[0].name, N_PRCTL_ALLOWED, sizeof prctl_allowed[0]);
}

napi_status seccomp_register(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = export_function(env, exports, "installSeccomp", js_install_seccomp)) != napi_ok) return s;
  if ((s = export_function(env, exports, "seccompBlocked", js_seccomp_blocked)) != napi_ok) return s;
  return export_function(env, exports, "seccompPrctlAllowed", js_seccomp_prctl_allowed);
}
