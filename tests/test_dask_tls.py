"""A Dask executor over TLS (sim.montecarlo): a real scheduler and worker on 127.0.0.1 speaking
TLS with certificates made here (openssl), found through Dask's own config
(``distributed.comm.tls.*``, what ``distributed.security.Security()`` reads).

A Dask scheduler runs what its clients send, as the workers' user: TLS with client
certificates (Dask's TLS is mutual) is what keeps other people's code off it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rolloutlab.errors import DaskUnavailable, ExecutorError
from rolloutlab.sim.montecarlo import DASK_TLS_KEYS, ExecutorChoice, parse_executor, run_many
from tests.test_sim_montecarlo import STRATEGIES, draw_row

dask_config = pytest.importorskip("dask.config", reason="dask is not installed: pip install 'rolloutlab[dask]'")
pytest.importorskip("distributed", reason="dask.distributed is not installed: pip install 'rolloutlab[dask]'")

ROOT = Path(__file__).resolve().parents[1]


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_certificates(folder: Path, names: list[str]) -> dict[str, Path]:
    """A CA and, per name, a key and a certificate it signed (for 127.0.0.1, server and client use)."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificates (Debian: openssl)")
    files = {"ca": folder / "ca.pem", "ca-key": folder / "ca.key"}
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=rolloutlab-test-ca",
            "-keyout", str(files["ca-key"]), "-out", str(files["ca"]))
    ext = folder / "leaf.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
    for name in names:
        key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.pem"
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
        openssl("x509", "-req", "-in", str(csr), "-CA", str(files["ca"]), "-CAkey", str(files["ca-key"]),
                "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))
        files[name], files[f"{name}-key"] = cert, key
    return files


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Path]:
    return make_certificates(tmp_path_factory.mktemp("tls"), ["scheduler", "client", "stranger"])


def client_config(certs: dict[str, Path], cert: str = "client") -> dict[str, str]:
    """Dask's config for a client holding ``cert`` (signed by the test CA)."""
    return {"distributed.comm.tls.ca-file": str(certs["ca"]), "distributed.comm.tls.client.cert": str(certs[cert]),
            "distributed.comm.tls.client.key": str(certs[f"{cert}-key"])}


@pytest.fixture(scope="module")
def tls_scheduler(certs) -> str:
    """A real scheduler and one worker (one thread) on 127.0.0.1 speaking TLS only; its address."""
    from distributed import LocalCluster
    from distributed.security import Security

    security = Security(tls_ca_file=str(certs["ca"]), tls_scheduler_cert=str(certs["scheduler"]),
                        tls_scheduler_key=str(certs["scheduler-key"]), tls_worker_cert=str(certs["scheduler"]),
                        tls_worker_key=str(certs["scheduler-key"]), tls_client_cert=str(certs["client"]),
                        tls_client_key=str(certs["client-key"]), require_encryption=True)
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tls://", host="127.0.0.1",
                           dashboard_address=None, security=security)
    try:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        yield cluster.scheduler_address
    finally:
        cluster.close()


def batch(executor: str) -> pd.DataFrame:
    return run_many("checkout", STRATEGIES, 12, 77, run_fn=draw_row, progress=False, executor=executor)


@pytest.mark.parametrize("scheme", ["tls", "dask+tls", "dask"], ids=["tls://", "dask+tls://", "dask:// with certificates"])
def test_runs_on_a_tls_scheduler_give_the_serial_table(certs, tls_scheduler, scheme):
    """With the client's certificates in Dask's config, every form of the address runs over
    TLS, and the table is the serial one, bit for bit."""
    hostport = tls_scheduler.removeprefix("tls://")
    with dask_config.set(client_config(certs)):
        assert parse_executor(f"{scheme}://{hostport}") == ExecutorChoice("dask", tls_scheduler)
        table = batch(f"{scheme}://{hostport}")
    pd.testing.assert_frame_equal(table, batch("serial"))


def test_a_plain_tcp_client_is_refused_by_the_tls_scheduler(tls_scheduler):
    """Without certificates a dask:// address is plain TCP, which the TLS scheduler never
    answers: the run stops with a connection error instead of running anything."""
    hostport = tls_scheduler.removeprefix("tls://")
    with dask_config.set({key: None for key in DASK_TLS_KEYS} | {"distributed.comm.timeouts.connect": "3s"}):
        assert parse_executor(f"dask://{hostport}").address == f"tcp://{hostport}"
        with pytest.raises(ConnectionError, match="cannot reach the Dask scheduler"):
            batch(f"dask://{hostport}")


def test_a_tls_client_whose_certificate_the_scheduler_does_not_trust_is_refused(certs, tls_scheduler, tmp_path):
    """Mutual TLS: a client with a certificate of another CA does not get in either."""
    other = make_certificates(tmp_path, ["intruder"])
    config = client_config(other, "intruder") | {"distributed.comm.tls.ca-file": str(certs["ca"]),
                                                 "distributed.comm.timeouts.connect": "3s"}
    with dask_config.set(config):
        with pytest.raises(ConnectionError, match="cannot reach the Dask scheduler"):
            batch(tls_scheduler)


def test_a_tls_address_without_certificates_names_the_settings_it_needs():
    with dask_config.set({key: None for key in DASK_TLS_KEYS}):
        with pytest.raises(ExecutorError) as refused:
            parse_executor("tls://127.0.0.1:8786")
    message = str(refused.value)
    assert all(key in message for key in DASK_TLS_KEYS)
    assert "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT" in message


def test_a_certificate_file_that_is_not_there_is_named(certs, tmp_path):
    gone = tmp_path / "gone.pem"
    with dask_config.set(client_config(certs) | {"distributed.comm.tls.client.cert": str(gone)}):
        with pytest.raises(ExecutorError, match=f"distributed.comm.tls.client.cert is '{gone}', which is not a file"):
            parse_executor("dask://127.0.0.1:8786")  # certificates given: TLS, so they must be usable


def test_the_cli_refuses_a_tls_executor_without_certificates_with_exit_2(tmp_path):
    """Bad input, one line, no traceback: the user's Dask settings are named."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    env["DASK_DISTRIBUTED__COMM__TLS__CA_FILE"] = str(tmp_path / "missing-ca.pem")
    done = subprocess.run([sys.executable, "-m", "rolloutlab.cli", "compare", "--runs", "2", "--executor",
                           "tls://127.0.0.1:8786", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "distributed.comm.tls.client.cert" in done.stderr


def test_a_tls_address_without_dask_installed_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.config", None)
    with pytest.raises(DaskUnavailable, match=r"pip install 'rolloutlab\[dask\]'"):
        parse_executor("tls://127.0.0.1:8786")
