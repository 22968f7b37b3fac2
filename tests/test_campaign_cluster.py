"""The campaign's cluster: a --scheduler that is not Dask is one line within
the connect timeout (exit 69), and the embedded LocalCluster is private (TLS
with temporary credentials, no HTTP route).  Local loopback sockets only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("distributed")
pytest.importorskip("cryptography")

from kmallocwd.campaign import Campaign, Options, parse_plan, run_campaign  # noqa: E402
from kmallocwd.errors import EXIT_UNAVAILABLE, Unavailable, UsageError  # noqa: E402

from conftest import ROOT  # noqa: E402

PLAN = "[[check]]\nargs = ['-p', 'v3', '-m', 'sc']\n"


class Listener:
    """A loopback TCP service that is not Dask: silent, HTTP, or a banner."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.address = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns: list[socket.socket] = []
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(c)
            try:
                if self.mode == "http":        # answers what it reads, as HTTP
                    c.settimeout(5)
                    c.recv(4096)
                    c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                elif self.mode == "banner":    # talks first, as SSH or SMTP do
                    c.sendall(b"SSH-2.0-OpenSSH_9.6 not-dask\r\n")
            except OSError:
                pass                           # silent: accepts, says nothing

    def close(self) -> None:
        self.stop.set()
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture
def listener(request):
    lst = Listener(request.param)
    yield lst
    lst.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("listener", ["silent", "http", "banner"], indirect=True)
@pytest.mark.slow
def test_a_service_that_is_not_dask_is_refused_within_the_connect_timeout(listener):
    campaign = Campaign(parse_plan(PLAN, "p.toml"))
    with pytest.raises(Unavailable) as exc:
        run_campaign(campaign, Options(scheduler=listener.address, connect_timeout_s=2))
    msg = str(exc.value)
    assert "\n" not in msg and listener.address in msg, msg
    assert "not a Dask scheduler" in msg or "no answer as a Dask scheduler" in msg, msg
    assert not campaign.records


def _campaign(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "kmallocwd", "campaign", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(120)
@pytest.mark.slow
def test_the_cli_says_so_in_one_line_exit_69(tmp_path):
    plan = tmp_path / "p.toml"
    plan.write_text(PLAN)
    lst = Listener("banner")
    try:
        r = _campaign(str(plan), "--scheduler", lst.address, "-q")
    finally:
        lst.close()
    assert r.returncode == EXIT_UNAVAILABLE == 69, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a Dask scheduler" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("address,needle", [
    ("ucx://127.0.0.1:8786", "the ucx:// transport is not supported here"),
    ("inproc://x", "the inproc:// transport"),
    ("tcp://[::1", "not a Dask scheduler address"),
    ("tls://127.0.0.1:8786", "DASK_DISTRIBUTED__COMM__TLS__CA_FILE"),
])
@pytest.mark.slow
def test_an_address_that_cannot_work_is_bad_usage(tmp_path, address, needle):
    plan = tmp_path / "p.toml"
    plan.write_text(PLAN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    r = subprocess.run([sys.executable, "-m", "kmallocwd", "campaign", str(plan),
                        "--scheduler", address, "-q"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60, env=dict(env, PYTHONPATH=str(ROOT)))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and needle in lines[0], r.stderr


# ---------------------------------------------------------------- the embedded cluster

def _tree_listeners() -> list[tuple[str, int]]:
    """The TCP ports this process and its children listen on."""
    import psutil

    me = psutil.Process()
    out = []
    for p in [me, *me.children(recursive=True)]:
        try:
            conns = p.net_connections(kind="tcp")
        except (psutil.Error, AttributeError):
            conns = p.connections(kind="tcp")
        out += [(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    return out


def _http_status(ip: str, port: int, path: str) -> int | None:
    try:
        return urllib.request.urlopen(f"http://{ip}:{port}{path}", timeout=3).status
    except urllib.error.HTTPError as exc:
        return exc.code
    except Exception:  # noqa: BLE001 - not HTTP at all (TLS, Dask)
        return None


@pytest.mark.timeout(240)
@pytest.mark.slow
def test_the_embedded_cluster_is_private():
    from distributed import Client
    from distributed.security import Security

    plan = parse_plan("[[stress]]\nprotocols = ['seqcount']\ndurations = 20\n"
                      "[stress.knobs]\nalloc_ns = 100\n", "p.toml")
    campaign = Campaign(plan)
    seen: dict = {}
    errors: list = []

    def go():
        try:
            run_campaign(campaign, Options(workers=1))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=go)
    t.start()
    deadline = time.monotonic() + 120
    while campaign.scheduler is None and time.monotonic() < deadline and t.is_alive():
        time.sleep(0.05)
    address = campaign.scheduler
    assert address and address.startswith("tls://127.0.0.1:"), (address, errors)
    # no HTTP endpoint (dashboard, health, metrics) in the cluster's processes
    listeners = _tree_listeners()
    assert listeners
    for ip, port in listeners:
        assert port != 8787
        seen[port] = (_http_status(ip, port, "/health"), _http_status(ip, port, "/status"))
        assert all(s in (None, 404) for s in seen[port]), (port, seen[port])
    # a plain client, or one with other credentials, cannot submit work
    hostport = address[len("tls://"):]
    for kw in ({"address": f"tcp://{hostport}"},
               {"address": address, "security": Security.temporary()}):
        with pytest.raises(Exception):  # noqa: B017 - any refusal will do
            with Client(timeout=5, set_as_default=False, **kw) as c:
                c.submit(os.getpid).result(timeout=5)
    t.join(180)
    assert not errors and not t.is_alive()
    assert campaign.records and all(r["status"] == "done" for r in campaign.records.values())


@pytest.mark.timeout(240)
@pytest.mark.slow
def test_a_tls_scheduler_is_used_with_the_tls_files_in_dasks_configuration(tmp_path):
    """The multi-machine recipe of docs/campaigns.md, on this machine: a
    scheduler and a worker with TLS files, the campaign with the client's files."""
    from distributed import LocalCluster
    from distributed.security import Security

    sec = Security.temporary()
    files = {"ca.pem": sec.tls_ca_file, "cert.pem": sec.tls_client_cert,
             "key.pem": sec.tls_client_key}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    plan = tmp_path / "p.toml"
    plan.write_text(PLAN)
    base = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    tls_env = dict(base, PYTHONPATH=str(ROOT),
                   DASK_DISTRIBUTED__COMM__TLS__CA_FILE=str(tmp_path / "ca.pem"),
                   DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT=str(tmp_path / "cert.pem"),
                   DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY=str(tmp_path / "key.pem"))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, security=sec,
                      dashboard_address=None, silence_logs=50) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://")
        r = subprocess.run([sys.executable, "-m", "kmallocwd", "campaign", str(plan),
                            "--scheduler", address, "-q"], cwd=ROOT, env=tls_env,
                           capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stderr
        assert "PASS" in r.stdout
        # the same address without the files: one line, exit 2, nothing run
        r = subprocess.run([sys.executable, "-m", "kmallocwd", "campaign", str(plan),
                            "--scheduler", address, "-q"], cwd=ROOT,
                           env=dict(base, PYTHONPATH=str(ROOT)),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
