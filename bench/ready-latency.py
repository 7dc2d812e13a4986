#!/usr/bin/env python3
"""Spawn -> ready fd, in ms (min/median of N): how soon after a client starts
the helper it may use it (TAP attached, stack running, API socket listening),
for the command line bench/run.js starts (`-c -r 9 --mtu 1500 --api-socket
DIR/api.sock PID tap0`, with and without -6). The helper gets the write end of
a pipe as fd 9; the time is taken when the read end yields '1' (no polling).
Each run gets a fresh network namespace (`unshare -Urn sleep 60`).

usage: sudo python3 bench/ready-latency.py [N=20] [NAME=COMMAND ...]
(COMMAND gets the arguments above appended.) Default command: bin/usernet.
Several commands run round-robin, so that A/B comparisons share the drift.
Needs root.
"""
import os, shutil, statistics, subprocess, sys, tempfile, time
from startup_common import fresh_netns

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def one(cmd, extra, tmp):
    ns = fresh_netns()
    api = os.path.join(tmp, 'api.sock')
    argv = cmd + ['-c', *extra, '-r', '9', '--mtu', '1500', '--api-socket', api, str(ns.pid), 'tap0']
    r, w = os.pipe()
    os.dup2(w, 9)  # the helper's ready fd
    os.close(w)
    t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
    helper = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(9,))
    os.close(9)
    got = os.read(r, 1)
    t1 = time.clock_gettime(time.CLOCK_MONOTONIC)
    os.close(r)
    for p in (helper, ns):
        p.kill()
        p.wait()
    err = helper.stderr.read().decode(errors='replace')
    helper.stderr.close()
    if got != b'1':
        sys.exit(f'{" ".join(argv)}: no ready byte (got {got!r}); stderr:\n{err}')
    try:
        os.unlink(api)
    except FileNotFoundError:
        pass
    return (t1 - t0) * 1000

n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
cmds = dict(a.split('=', 1) for a in sys.argv[2:])
cmds = {k: v.split() for k, v in cmds.items()} or {'usernet': [os.path.join(ROOT, 'bin', 'usernet')]}
tmp = tempfile.mkdtemp(prefix='usernet-ready-')
try:
    runs = [(name + label, cmd, extra) for name, cmd in cmds.items() for label, extra in (('', []), (' -6', ['-6']))]
    for _, cmd, extra in runs:
        one(cmd, extra, tmp)  # warm the page cache; not counted
    # Round-robin, so that the machine's drift weighs on every command alike.
    xs = {name: [] for name, _, _ in runs}
    for _ in range(n):
        for name, cmd, extra in runs:
            xs[name].append(one(cmd, extra, tmp))
    for name, v in xs.items():
        print(f'{name:24s} median {statistics.median(v):6.1f} ms  min {min(v):6.1f}  max {max(v):6.1f}  (n={n})')
finally:
    shutil.rmtree(tmp)
