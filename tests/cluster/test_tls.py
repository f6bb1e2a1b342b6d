"""A 3-node cluster on mutual TLS, with a CA and certificates made here by ``openssl``: peers
and clients present certificates signed by TLS_CA; a client without one is refused."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from processes import ProcessCluster, http

import agree

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory: Path) -> dict[str, str]:
    """A CA, and one certificate for 127.0.0.1 (server and client use) signed by it."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=agree test CA",
        cwd=directory,
    )
    (directory / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    for name in ("node", "client"):
        _openssl(
            "req",
            *ec,
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            "/CN=127.0.0.1",
            cwd=directory,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            cwd=directory,
        )
    return {
        name: str(directory / name)
        for name in ("ca.pem", "node.pem", "node.key", "client.pem", "client.key")
    }


def test_mutual_tls_cluster(process_cluster: Callable[..., ProcessCluster], tmp_path: Path) -> None:
    certs = make_certificates(tmp_path)
    client_context = ssl.create_default_context(cafile=certs["ca.pem"])
    client_context.load_cert_chain(certs["client.pem"], certs["client.key"])
    cluster = process_cluster(
        3,
        scheme="https",
        context=client_context,
        TLS_CERT=certs["node.pem"],
        TLS_KEY=certs["node.key"],
        TLS_CA=certs["ca.pem"],
    )
    cluster.start_all()  # the peers found each other over TLS: a leader was elected
    with agree.Client(list(cluster.urls.values()), ssl=client_context) as client:
        ledger = client.proxy("ledger")
        assert ledger.append("over-tls") == 1
        assert client.status()["leader_id"] in cluster.urls
    # Replicated to every node, each read over TLS.
    for url in cluster.urls.values():
        status, body = http("POST", url + "/v1/objects/ledger/all_tags", {}, context=client_context)
        assert (status, body["result"]) == (200, ["over-tls"])
    # Without a client certificate the handshake itself fails.
    no_cert = ssl.create_default_context(cafile=certs["ca.pem"])
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        http("GET", cluster.urls["n1"] + "/v1/status", context=no_cert)
