"""An agent that speaks to ctrl the way upstream's osmo_exec does, for compatibility tests.

Usage: upstream_agent.py SOCKET HISTFILE COMMAND [ARG...]

- It connects to ctrl's socket, never greets, waits for ExecStart, then runs COMMAND
  (its own process group), sending each stdout and stderr line as MessageOut and
  MessageErr, and ExecFinished or ExecFailed when it ends; UserStop kills the command's
  process group (answered with UserStopFinished) and UserStart runs it again.
- UserExecStart opens an exec session the upstream way: a second connection to the
  socket whose first bytes are the size object, decoded by a JSON decoder of its own
  (so whatever came in the same read after the size is lost, as upstream loses it);
  then the command (split shell-style) on a new pty given that size, input with
  `\\0RESIZE:{json}` escapes applied (each escape ends at its first `}`), and the pty's
  output copied back until the terminal ends. The shell is never reaped.
- Every message carries all nine fields, as Go's encoder writes them.
"""

import fcntl
import json
import os
import shlex
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time

SOCKET, HISTFILE = sys.argv[1], sys.argv[2]
COMMAND = sys.argv[3:]
RESIZE = b"\x00RESIZE:"

send_lock = threading.Lock()
control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
state = {"command": None, "stopped": False}
shells = []


def log(text):
    sys.stderr.write(f"upstream_agent: {text}\n")
    sys.stderr.flush()


def send(kind, **fields):
    message = {
        "Type": kind,
        "MessageOut": "",
        "MessageErr": "",
        "MessageOps": "",
        "OutputFolder": "",
        "RouterAddress": "",
        "Command": "",
        "TaskPort": 0,
        "RsyncRunning": False,
    }
    message.update(fields)
    line = json.dumps(message, separators=(",", ":")) + "\n"
    with send_lock:
        control.sendall(line.encode())


def lines_of(sock):
    pending = b""
    while True:
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)
        chunk = sock.recv(65536)
        if not chunk:
            return
        pending += chunk


def field(obj, name):
    """A field matched without case, as Go's decoder does."""
    for key, value in obj.items():
        if key.lower() == name.lower():
            return value
    return None


def write_all(fd, data):
    while data:
        data = data[os.write(fd, data) :]


def set_size(fd, size):
    rows, cols = field(size, "Rows"), field(size, "Cols")
    if not all(isinstance(v, int) and 0 <= v <= 65535 for v in (rows, cols)):
        raise ValueError(f"not a size: {size!r}")
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def read_size(conn):
    """The first JSON value on the connection; the rest of the read it came in is lost."""
    seen = b""
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            raise ValueError("EOF")
        seen += chunk
        text = seen.decode(errors="replace").lstrip()
        try:
            value, _ = json.JSONDecoder().raw_decode(text)
            return value
        except json.JSONDecodeError as e:
            if e.pos < len(text):
                raise


def user_exec(entry_command):
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(SOCKET)
    except OSError as e:
        log(f"fail to connect to osmo-ctrl {e}")
        return
    with conn:
        try:
            size = read_size(conn)
        except ValueError as e:
            conn.sendall(f"Error decoding initial size message: {e}\r\n".encode())
            return
        args = shlex.split(entry_command)
        if not args:
            # Upstream indexes the empty word list and the whole agent dies.
            log("panic: runtime error: index out of range [0] with length 0")
            os._exit(2)
        env = dict(os.environ)
        env.update(
            TERM="xterm",
            HISTFILE=HISTFILE,
            HISTSIZE="1000",
            HISTFILESIZE="2000",
            HISTCONTROL="ignoredups:ignorespace",
            HISTIGNORE="",
            PS1="\\$ ",
        )
        master, slave = os.openpty()
        try:
            shell = subprocess.Popen(
                args,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                start_new_session=True,
                preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
            )
        except OSError as e:
            conn.sendall(f"Error starting pseudo-terminal: {e}\r\n".encode())
            os.close(master)
            return
        finally:
            os.close(slave)
        shells.append(shell)
        try:
            set_size(master, size)
        except (ValueError, OSError) as e:
            conn.sendall(f"Error setting pty size: {e}\r\n".encode())
            os.close(master)
            return
        threading.Thread(target=relay_input, args=(conn, master, shell), daemon=True).start()
        while True:
            try:
                data = os.read(master, 1024)
            except OSError:
                break
            if not data:
                break
            try:
                conn.sendall(data)
            except OSError:
                break
        os.close(master)
        # (Go's Close ends the input goroutine's read; here that takes a shutdown.)
        conn.shutdown(socket.SHUT_RDWR)
        log("Ending exec sesion.")


def relay_input(conn, master, shell):
    carry = b""
    while True:
        try:
            chunk = conn.recv(32 * 1024)
        except OSError:
            return
        if not chunk:
            return
        data, carry = carry + chunk, b""
        try:
            while data:
                idx = data.find(b"\x00")
                if idx == -1:
                    write_all(master, data)
                    break
                if idx > 0:
                    write_all(master, data[:idx])
                    data = data[idx:]
                if len(data) < len(RESIZE):
                    carry += data
                    break
                if not data.startswith(RESIZE):
                    write_all(master, data[:1])
                    data = data[1:]
                    continue
                end = data.find(b"}", len(RESIZE))
                if end == -1:
                    carry += data
                    break
                try:
                    set_size(master, json.loads(data[len(RESIZE) : end + 1]))
                    shell.send_signal(signal.SIGWINCH)
                except (ValueError, OSError):
                    pass
                data = data[end + 1 :]
        except OSError:
            return


def stream(pipe, kind, key):
    for raw in pipe:
        send(kind, **{key: raw.decode(errors="replace").rstrip("\n")})


def run_command():
    command = subprocess.Popen(
        COMMAND,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    state["command"] = command
    readers = [
        threading.Thread(target=stream, args=(command.stdout, "MessageOut", "MessageOut")),
        threading.Thread(target=stream, args=(command.stderr, "MessageErr", "MessageErr")),
    ]
    for reader in readers:
        reader.start()
    code = command.wait()
    for reader in readers:
        reader.join()
    return code


def receive_requests(messages):
    for m in messages:
        kind = m.get("Type")
        if kind == "UserExecStart":
            threading.Thread(target=user_exec, args=(m.get("Command", ""),), daemon=True).start()
        elif kind == "UserStop" and state["command"] is not None:
            state["stopped"] = True
            os.killpg(state["command"].pid, signal.SIGKILL)
        elif kind == "UserStart":
            state["stopped"] = False
            threading.Thread(target=restart, daemon=True).start()


def restart():
    code = run_command()
    finish(code)


def finish(code):
    if state["stopped"]:
        send("UserStopFinished")
        return
    if code == 0:
        send("ExecFinished")
        os._exit(0)
    send("ExecFailed", MessageErr=f"exit status {code}")
    os._exit(code)


def main():
    deadline = time.monotonic() + 60
    while True:
        try:
            control.connect(SOCKET)
            break
        except OSError:
            if time.monotonic() > deadline:
                log("Data Sidecar took too long to start up")
                os._exit(2)
            time.sleep(0.01)
    messages = lines_of(control)
    for m in messages:
        if m.get("Type") == "CtrlFailed":
            return
        if m.get("Type") == "ExecStart":
            break
        log(f"Ignore unexpected Type: {m.get('Type')}")
    else:
        return
    threading.Thread(target=receive_requests, args=(messages,), daemon=True).start()
    finish(run_command())
    # Stopped: the command's next run (UserStart) ends the agent.
    threading.Event().wait()


main()
