"""Listeners of the network-isolation test, run inside a network namespace the test made.

    python netns_servers.py LOG '[{"kind": "http", "addr": "198.51.100.1", "port": 80, "body": "internet"}, ...]'

Kinds: `http` (answers every request with `body`), `tcp` (a stand-in: accepts and
closes), `udp` (records datagrams), `dns` (answers A queries for the names in
`names`, NXDOMAIN otherwise). Every connection or datagram is appended to LOG as
one JSON line `{"kind", "addr", "port", "peer"}`, so the test can prove that a
refused destination received nothing. Prints "ready" once every socket is bound.
"""

import json
import socket
import struct
import sys
import threading

LOG_LOCK = threading.Lock()


def record(log: str, spec: dict, peer) -> None:
    with LOG_LOCK, open(log, "a") as fh:
        fh.write(json.dumps({"kind": spec["kind"], "addr": spec["addr"], "port": spec["port"], "peer": peer[0]}) + "\n")


def family(addr: str) -> int:
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def serve_tcp(log: str, spec: dict, sock: socket.socket) -> None:
    body = spec.get("body", "").encode()
    while True:
        conn, peer = sock.accept()
        record(log, spec, peer)
        if spec["kind"] == "http":
            conn.settimeout(5)
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(body), body))
            except OSError:
                pass
        conn.close()


def dns_answer(query: bytes, names: dict) -> bytes:
    ident, _flags, qdcount = struct.unpack("!HHH", query[:6])
    pos, labels = 12, []
    while query[pos]:
        length = query[pos]
        labels.append(query[pos + 1:pos + 1 + length].decode("ascii", "replace").lower())
        pos += 1 + length
    question = query[12:pos + 5]
    qtype = struct.unpack("!H", query[pos + 1:pos + 3])[0]
    address = names.get(".".join(labels))
    if address is None:
        return struct.pack("!HHHHHH", ident, 0x8183, qdcount, 0, 0, 0) + question
    if qtype != 1:  # no AAAA etc.: an empty answer
        return struct.pack("!HHHHHH", ident, 0x8180, qdcount, 0, 0, 0) + question
    answer = struct.pack("!HHHLH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(address)
    return struct.pack("!HHHHHH", ident, 0x8180, qdcount, 1, 0, 0) + question + answer


def serve_udp(log: str, spec: dict, sock: socket.socket) -> None:
    while True:
        data, peer = sock.recvfrom(4096)
        record(log, spec, peer)
        if spec["kind"] == "dns":
            try:
                sock.sendto(dns_answer(data, spec.get("names", {})), peer)
            except (IndexError, struct.error, OSError):
                pass


def main() -> None:
    log, specs = sys.argv[1], json.loads(sys.argv[2])
    threads = []
    for spec in specs:
        udp = spec["kind"] in ("udp", "dns")
        sock = socket.socket(family(spec["addr"]), socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((spec["addr"], spec["port"]))
        if not udp:
            sock.listen(16)
        threads.append(threading.Thread(target=serve_udp if udp else serve_tcp, args=(log, spec, sock), daemon=True))
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes our stdin (or kills us)


if __name__ == "__main__":
    main()
