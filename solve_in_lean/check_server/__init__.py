"""The check server: a long-lived process that runs `lean-solve check` for clients, so a check
skips Python's imports and Lean's start-up (in the spirit of dmypy or the Gradle daemon).

Opt-in (`lean-solve server start`), and invisible when absent: `lean-solve check` asks it first
(client.py, standard library only, before anything heavy is imported) and checks in its own
process whenever the server is missing, refuses, or fails in any way. The server (server.py)
runs the same code as an in-process check (cli/fastcheck.py, through a CheckIO) and sends back
stdout, stderr and the exit code, which the client writes verbatim.

Safety: a Unix socket in a directory only this user can enter, the peer's uid checked on every
connection, the socket named after the installation, and a request answered only while the
server's code files are unchanged and the client's environment matches its own.
"""
