#!/usr/bin/env python3
"""Drives the chat_server program with several clients at once, as users would: names, rooms, what is
said reaching the room and only the room, /who, /quit, a line too long, and a graceful stop on SIGTERM
that tells every client and exits with 0. Usage: check_chat.py <chat_server executable>"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

failures = 0


def check(what, condition, detail=""):
    global failures
    print(("ok: " if condition else "FAILED: ") + what + ("" if condition else f": {detail}"))
    failures += not condition


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.pending = b""
        self.expect_line("welcome")

    def send(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def line(self):
        while b"\n" not in self.pending:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode()

    def expect_line(self, prefix):
        line = self.line()
        if line is None or not line.startswith(prefix):
            raise AssertionError(f"expected a line starting with {prefix!r}, got {line!r}")
        return line

    def silent(self, seconds=0.2):
        """Nothing arrives for a while."""
        self.sock.settimeout(seconds)
        try:
            return b"\n" not in self.pending and not self.sock.recv(65536, socket.MSG_PEEK)
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(10)


def main(server_path):
    with tempfile.TemporaryDirectory() as directory:
        port_file = os.path.join(directory, "port")
        server = subprocess.Popen([server_path, "--port-file", port_file], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            for _ in range(100):
                if os.path.exists(port_file):
                    break
                time.sleep(0.1)
            port = int(open(port_file).read())
            run_clients(port)
            stop = time.monotonic()
            server.send_signal(signal.SIGTERM)
            output, _ = server.communicate(timeout=20)
            took = time.monotonic() - stop
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        print(output)
        check("the server exits with 0 after SIGTERM", server.returncode == 0, f"exit status {server.returncode}")
        check("... after a graceful stop", "stopped gracefully after" in output, output)
        check(f"... that did not wait for idle clients (took {took:.2f} s)", took < 2)


def run_clients(port):
    alice, bob, carol, dave = (Client(port) for _ in range(4))
    for client, nick in ((alice, "alice"), (bob, "bob"), (carol, "carol"), (dave, "dave")):
        client.send("/nick " + nick)
        client.expect_line("you are " + nick)
    alice.send("/join general")
    check("alice joins general", alice.expect_line("joined general") == "joined general; in general: alice")
    bob.send("/join general")
    bob.expect_line("joined general")
    check("alice hears bob join", alice.line() == "* bob joined general")
    carol.send("/join general")
    carol.expect_line("joined general")
    alice.line(), bob.line()  # carol's arrival
    dave.send("/join random")
    dave.expect_line("joined random")

    alice.send("hello, everyone")
    check("bob hears alice", bob.line() == "[general] alice: hello, everyone")
    check("carol hears alice", carol.line() == "[general] alice: hello, everyone")
    check("dave, in another room, hears nothing", dave.silent())
    check("alice is not sent her own line", alice.silent())

    # Many lines from several senders at once: each reader gets every line of each sender, in order.
    for i in range(200):
        alice.send(f"a{i}")
        bob.send(f"b{i}")
    heard = [carol.line() for _ in range(400)]
    from_alice = [h for h in heard if h.startswith("[general] alice: ")]
    from_bob = [h for h in heard if h.startswith("[general] bob: ")]
    check("carol hears 200 lines of each, each sender's in order",
          from_alice == [f"[general] alice: a{i}" for i in range(200)]
          and from_bob == [f"[general] bob: b{i}" for i in range(200)])
    for _ in range(200):
        alice.line()
        bob.line()

    carol.send("/who")
    check("/who lists the room", carol.line() == "in general: alice, bob, carol")
    dupe = Client(port)
    dupe.send("/nick bob")
    dupe.expect_line("you are bob")
    dupe.send("/join general")
    check("a name taken in a room is refused", dupe.line() == "error: bob is taken in general")
    stranger = Client(port)
    stranger.send("before any name")
    check("a line before /join is an error", stranger.line() == "error: /join a room first")

    bob.send("/quit")
    check("/quit says bye", bob.line() == "bye")
    check("... and closes", bob.line() is None)
    check("the room hears bob leave", alice.line() == "* bob left general" and carol.line() == "* bob left general")

    long_one = Client(port)
    long_one.send("x" * 5000)
    check("a line past 4096 bytes is refused", long_one.line() == "error: a line may have at most 4096 bytes")
    check("... and its connection closed", long_one.line() is None)

    alice.send("still here")
    check("the others go on", carol.line() == "[general] alice: still here")
    # Read once SIGTERM has been sent: every client still connected is told and disconnected.
    clients_at_stop.extend([alice, carol, dave, dupe, stranger])


clients_at_stop = []

if __name__ == "__main__":
    main(sys.argv[1])
    for client in clients_at_stop:
        got = client.line()
        check("a client is told of the stop", got == "* the server is shutting down", repr(got))
        check("... and disconnected", client.line() is None)
    if failures:
        print(f"{failures} check(s) failed")
        sys.exit(1)
    print("all checks passed")
