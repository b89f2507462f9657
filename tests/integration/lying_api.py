"""A Kubernetes API server that lies (tests/integration/lying_api.rs).

Every request on 127.0.0.1 gets the answer MODE names; the port is printed.
  huge       an endless chunked body (no line break)
  liar       Content-Length: 4000000000 and bytes as fast as they go
  slow       a head, then one byte a second of a 100000-byte body
  silent     the request is read and never answered
  header     a header line that never ends
  truncated  Content-Length: 5000, 14 bytes, then the connection closes
"""
import socket
import sys
import threading
import time

MODE = sys.argv[1]


def answer(conn):
    try:
        conn.recv(65536)
        if MODE == "huge":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b'{"a":"' + b"x" * 65530
            while True:
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        elif MODE == "liar":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 4000000000\r\n\r\n")
            while True:
                conn.sendall(b" " * 65536)
        elif MODE == "slow":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100000\r\n\r\n")
            while True:
                conn.sendall(b" ")
                time.sleep(1)
        elif MODE == "silent":
            time.sleep(3600)
        elif MODE == "header":
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Endless: ")
            while True:
                conn.sendall(b"a" * 65536)
        elif MODE == "truncated":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 5000\r\n\r\n{\"kind\":\"Pod\",")
            conn.close()
    except OSError:
        pass


def main():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    print(server.getsockname()[1], flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=answer, args=(conn,), daemon=True).start()


main()
