"""What bench/tap-latency.py and bench/ready-latency.py share."""
import os, subprocess, time


def fresh_netns():
    """`unshare -Urn sleep 60`, returned once its network namespace exists."""
    ns = subprocess.Popen(['unshare', '-Urn', 'sleep', '60'])
    ours = os.readlink('/proc/self/ns/net')
    while True:
        try:
            if os.readlink(f'/proc/{ns.pid}/ns/net') != ours:
                return ns
        except OSError:
            pass
        time.sleep(0.001)
