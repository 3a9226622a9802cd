#!/usr/bin/env python3
"""A pseudo-terminal pair, like `socat -d -d pty,raw,echo=0,link=A pty,raw,echo=0,link=B`.

Opens two ptys in raw mode, links A and B to their slave paths, prints both paths on one line
("ready A_SLAVE B_SLAVE"), then copies bytes between the two masters until SIGTERM/SIGINT or stdin
closes. The relay keeps each slave open itself, so a client may close and reopen its end without
ending the pair. Bytes for a side nobody drains are dropped once its buffer is full, as on a
serial line. The links are removed at exit. Used by hil-tests where socat is not installed.
"""
import os
import select
import signal
import sys
import tty


def main() -> int:
    if len(sys.argv) != 3:
        sys.stderr.write("usage: pty_relay.py LINK_A LINK_B\n")
        return 2
    links = sys.argv[1:3]
    pairs = [os.openpty() for _ in links]
    for master, slave in pairs:
        tty.setraw(slave)
        os.set_blocking(master, False)
    for link, (_, slave) in zip(links, pairs):
        try:
            os.unlink(link)
        except FileNotFoundError:
            pass
        os.symlink(os.ttyname(slave), link)

    stop = False

    def on_signal(_sig, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print("ready", os.ttyname(pairs[0][1]), os.ttyname(pairs[1][1]), flush=True)

    masters = [m for m, _ in pairs]
    watch = masters + [sys.stdin.fileno()]
    try:
        while not stop:
            try:
                ready, _, _ = select.select(watch, [], [], 0.5)
            except InterruptedError:
                continue
            for fd in ready:
                if fd == sys.stdin.fileno():
                    if not os.read(fd, 4096):
                        stop = True
                    continue
                try:
                    data = os.read(fd, 65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    continue
                other = masters[1] if fd == masters[0] else masters[0]
                try:
                    os.write(other, data)
                except (BlockingIOError, OSError):
                    pass  # the far side does not read: the bytes are lost, as on a real line
    finally:
        for link in links:
            try:
                os.unlink(link)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
