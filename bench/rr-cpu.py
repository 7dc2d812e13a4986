#!/usr/bin/env python3
"""CPU per request/response round trip of the helper itself: what it costs,
apart from where the scheduler puts the processes (on this kind of VM a
cross-CPU wake-up swings every relay's rate several fold between runs; the
helper's own user and system time per round trip is much steadier).

For each command, round-robin, REPS times: a fresh `unshare -Urn` namespace,
the helper attached with `-c`, an echo server on the host's 127.0.0.1 (TCP
and UDP, in this process's threads), and a python3 guest that does WARM
round trips, then N measured ones, of 1 byte each (TCP with TCP_NODELAY on one
connection; then UDP). The helper's utime/stime (/proc/PID/stat, all threads)
and context switches (/proc/PID/status, main thread) are read around the
measured part.

usage: sudo python3 bench/rr-cpu.py [REPS=3] [NAME=COMMAND ...]
Default commands: bin/usernet, and slirp4netns when installed.
Prints per command: rate (k/s), user µs, system µs, voluntary ctx switches per
round trip, medians over REPS, for TCP and for UDP.
"""
import json, os, shutil, socket, statistics, subprocess, sys, tempfile, threading, time
from startup_common import fresh_netns

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = int(os.environ.get('RR_N', '20000'))
WARM = int(os.environ.get('RR_WARM', '5000'))
TICK = os.sysconf('SC_CLK_TCK')

GUEST = r'''
import json, socket, sys, time
host, port, uport, warm, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def mark(tag):
    print(tag, flush=True)
    sys.stdin.readline()
s = socket.create_connection((host, port), timeout=5)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for _ in range(warm):
    s.sendall(b'x'); s.recv(1)
mark('tcp-start')
t0 = time.perf_counter()
for _ in range(n):
    s.sendall(b'x')
    if not s.recv(1): raise SystemExit('EOF')
el = time.perf_counter() - t0
mark(json.dumps({'tcp': n / el}))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.connect((host, uport)); u.settimeout(1)
for _ in range(warm):
    u.send(b'x'); u.recv(1)
mark('udp-start')
t0 = time.perf_counter()
for _ in range(n):
    u.send(b'x'); u.recv(1)
el = time.perf_counter() - t0
mark(json.dumps({'udp': n / el}))
'''


def echo_servers():
    t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(('127.0.0.1', 0)); t.listen(4)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('127.0.0.1', 0))
    def tcp():
        while True:
            try:
                c, _ = t.accept()
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            def serve(c=c):
                while True:
                    d = c.recv(64)
                    if not d: return
                    c.sendall(d)
            threading.Thread(target=serve, daemon=True).start()
    def udp():
        while True:
            try:
                d, a = u.recvfrom(64)
            except OSError:
                return
            u.sendto(d, a)
    threading.Thread(target=tcp, daemon=True).start()
    threading.Thread(target=udp, daemon=True).start()
    return t, u


def cpu(pid):
    f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    # fields after the comm: state is [0]; utime [11], stime [12]
    return int(f[11]) / TICK, int(f[12]) / TICK


def vcs(pid):
    for l in open(f'/proc/{pid}/status'):
        if l.startswith('voluntary_ctxt_switches'):
            return int(l.split()[1])
    return 0


def one(cmd, tmp, tport, uport):
    ns = fresh_netns()
    ready_r, ready_w = os.pipe()
    os.dup2(ready_w, 9); os.close(ready_w)
    helper = subprocess.Popen(cmd + ['-c', '-r', '9', str(ns.pid), 'tap0'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(9,))
    os.close(9)
    if os.read(ready_r, 1) != b'1':
        sys.exit(f'{cmd}: no ready byte')
    os.close(ready_r)
    g = subprocess.Popen(['nsenter', '-t', str(ns.pid), '-U', '--preserve-credentials', '-n', sys.executable, '-c', GUEST,
                          '10.0.2.2', str(tport), str(uport), str(WARM), str(N)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    out = {}
    for proto in ('tcp', 'udp'):
        assert g.stdout.readline().strip() == f'{proto}-start'
        u0, s0 = cpu(helper.pid); c0 = vcs(helper.pid)
        g.stdin.write('\n'); g.stdin.flush()
        rate = json.loads(g.stdout.readline())[proto]
        u1, s1 = cpu(helper.pid); c1 = vcs(helper.pid)
        g.stdin.write('\n'); g.stdin.flush()
        out[proto] = (rate / 1000, (u1 - u0) / N * 1e6, (s1 - s0) / N * 1e6, (c1 - c0) / N)
    g.wait()
    for p in (helper, ns):
        p.kill(); p.wait()
    return out


reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
cmds = {k: v.split() for k, v in (a.split('=', 1) for a in sys.argv[2:])} or {
    'usernet': [os.path.join(ROOT, 'bin', 'usernet')],
    **({'slirp4netns': ['slirp4netns']} if shutil.which('slirp4netns') else {}),
}
t, u = echo_servers()
tmp = tempfile.mkdtemp(prefix='usernet-rrcpu-')
res = {name: [] for name in cmds}
try:
    for _ in range(reps):
        for name, cmd in cmds.items():
            res[name].append(one(cmd, tmp, t.getsockname()[1], u.getsockname()[1]))
finally:
    shutil.rmtree(tmp, ignore_errors=True)
print(f'{"":22s} {"k/s":>7s} {"user µs":>8s} {"sys µs":>8s} {"vcs":>5s}   (medians of {reps}, {N} round trips after {WARM})')
for name, rs in res.items():
    for proto in ('tcp', 'udp'):
        cols = [statistics.median(r[proto][i] for r in rs) for i in range(4)]
        print(f'{name + " " + proto:22s} {cols[0]:7.2f} {cols[1]:8.1f} {cols[2]:8.1f} {cols[3]:5.2f}')
