"""Measures each Lambda binary's cold start locally, as the Lambda service would see it.

Emulates the Lambda Runtime API (the part a custom runtime uses: GET next, POST response/
error) on 127.0.0.1, starts the function's `bootstrap` with AWS_LAMBDA_RUNTIME_API pointing
at it, and measures:
  init_ms   process start -> first GET /runtime/invocation/next (client set-up, config)
  invoke_ms that GET's answer (one recorded event) -> the function's POST of its result
  peak_rss  the process's maximum resident set (VmHWM from /proc, read before it is stopped), MiB
  size      the bootstrap binary, MiB
Usage: lambda_coldstart.py <lambda-dir> <name>=<event.json> ...   (environment is inherited)
Prints one JSON object per function.
"""
import http.server
import json
import os
import subprocess
import sys
import threading
import time


def peak_kib(pid):
    # VmHWM of the process itself: getrusage of children would also count the Python image the
    # child was forked from before it exec'd the bootstrap.
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def measure(bootstrap, event):
    state = {"next_at": None, "sent_at": None, "done_at": None, "result": None, "served": False}
    done = threading.Event()

    class Api(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def do_GET(self):
            if not self.path.endswith("/runtime/invocation/next"):
                self.send_error(404)
                return
            if state["served"]:
                # One invocation per measurement: hold the poll until the process is stopped.
                done.wait(30)
                return
            state["next_at"] = time.monotonic()
            state["served"] = True
            body = json.dumps(event).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Lambda-Runtime-Aws-Request-Id", "coldstart-1")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:x")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            state["sent_at"] = time.monotonic()

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            payload = self.rfile.read(length)
            state["done_at"] = time.monotonic()
            state["result"] = ("error" if "/error" in self.path else "ok", payload[:300].decode(errors="replace"))
            self.send_response(202)
            self.end_headers()
            done.set()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
               AWS_LAMBDA_FUNCTION_NAME="coldstart", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_LOG_FORMAT="JSON")
    start = time.monotonic()
    proc = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    finished = done.wait(120)
    hwm_kib = peak_kib(proc.pid)
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    server.shutdown()
    if not finished or state["next_at"] is None:
        return {"error": "no invocation completed", "stderr": err.decode(errors="replace")[-800:]}
    return {
        "init_ms": round((state["next_at"] - start) * 1000, 1),
        "invoke_ms": round((state["done_at"] - state["sent_at"]) * 1000, 1),
        "peak_rss_mib": round(hwm_kib / 1024, 1),
        "size_mib": round(os.path.getsize(bootstrap) / 2**20, 2),
        "result": state["result"][0],
        "response": state["result"][1],
    }


def main():
    lambda_dir = sys.argv[1]
    for spec in sys.argv[2:]:
        name, event_file = spec.split("=", 1)
        with open(event_file) as f:
            event = json.load(f)
        out = measure(os.path.join(lambda_dir, name, "bootstrap"), event)
        print(json.dumps({"function": name, **out}))


if __name__ == "__main__":
    main()
