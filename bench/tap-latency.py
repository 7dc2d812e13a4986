#!/usr/bin/env python3
"""Spawn -> tap0 exists, in ms (median of N): how soon after a client starts
the helper it can touch the TAP (slirp4netns's DHCP test runs `ip link set
tap0 up` about 25 ms after the start). A poller already inside the fresh
namespace spins on if_nametoindex("tap0"); both sides read CLOCK_MONOTONIC.

usage: sudo python3 bench/tap-latency.py [N=20] [NAME=COMMAND ...]
(COMMAND gets `PID tap0` appended, unless it names `{pid}` itself.)
Default commands: bin/usernet (the launcher attaches), the bundle run by Node
directly (Node attaches), and slirp4netns when installed. Needs root.
"""
import os, shutil, statistics, subprocess, sys, time
from startup_common import fresh_netns

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLL = r'''
import socket, time
print("ready", flush=True)
while True:
    try:
        socket.if_nametoindex("tap0"); break
    except OSError:
        pass
print(time.clock_gettime(time.CLOCK_MONOTONIC), flush=True)
'''

def one(cmd):
    ns = fresh_netns()
    poll = subprocess.Popen(['nsenter', '-t', str(ns.pid), '-n', sys.executable, '-c', POLL], stdout=subprocess.PIPE, text=True)
    assert poll.stdout.readline().strip() == 'ready'
    t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
    # A command naming {pid} places it itself (pasta); others get PID tap0 appended.
    argv = [a.replace('{pid}', str(ns.pid)) for a in cmd] if any('{pid}' in a for a in cmd) else cmd + [str(ns.pid), 'tap0']
    helper = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t1 = float(poll.stdout.readline())
    for p in (helper, ns):
        p.kill()
        p.wait()
    poll.wait()
    return (t1 - t0) * 1000

n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
cmds = dict(a.split('=', 1) for a in sys.argv[2:])
cmds = {k: v.split() for k, v in cmds.items()} or {
    'usernet (launcher)': [os.path.join(ROOT, 'bin', 'usernet')],
    'usernet (Node attach)': ['node', '--max-semi-space-size=2', os.path.join(ROOT, 'dist', 'bundle', 'usernet.js')],
    **({'slirp4netns': ['slirp4netns']} if shutil.which('slirp4netns') else {}),
}
for name, cmd in cmds.items():
    xs = [one(cmd) for _ in range(n)]
    print(f'{name:24s} median {statistics.median(xs):6.1f} ms  min {min(xs):6.1f}  max {max(xs):6.1f}  (n={n})')
