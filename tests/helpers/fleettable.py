"""The fleet's DynamoDB table in moto, as repo-template/aws/cronsync-host.yaml makes it
(``pk``/``sk`` strings, on-demand, TTL on ``expires_at``), and a moto server that
answers one request at a time.

moto's conditional writes are not atomic across concurrent requests: two threads
racing for ``attribute_not_exists(pk) OR last_occurrence < :occ`` both won (seen
here with 3 threads, 100 occurrences). DynamoDB applies the writes of one item one
after the other; :func:`serialised_moto` gives moto that property, so the races the
tests run are the service's, not the fake's.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

import boto3

REGION = "eu-west-1"


def dynamodb_client(endpoint: str) -> Any:
    """A DynamoDB client for moto at ``endpoint`` (dummy keys, no retries to wait for)."""
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=2, read_timeout=5
        ),
    )


def create_fleet_table(endpoint: str, name: str = "cronsync-fleet") -> str:
    """Create the fleet table in moto; return its name."""
    client = dynamodb_client(endpoint)
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
    return name


@contextlib.contextmanager
def serialised_moto() -> Iterator[str]:
    """Run moto's server on 127.0.0.1 for the with-block, handling one request at a
    time; yield its URL."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ: Any, start_response: Any) -> Any:
        with lock:
            return list(app(environ, start_response))

    server = make_server("127.0.0.1", 0, one_at_a_time, True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="moto-serial", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=30)
