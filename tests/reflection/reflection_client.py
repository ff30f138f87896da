"""A standard gRPC client (Python grpcio) that knows nothing of bro's schema.

It starts a real `bro serve`, learns the API through gRPC server reflection
(as grpcurl does), creates a case, appends events and reads the case back,
all from JSON; then stops the server with SIGTERM and checks it exits cleanly.
The CPR numbers are synthetic (they fail the modulus-11 check).
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ReflectedClient:
    """Calls unary methods by name with JSON requests, using reflected descriptors."""

    def __init__(self, channel, token=None):
        self.channel = channel
        self.metadata = [("bro-purpose", "case-handling")]
        if token:
            self.metadata.append(("authorization", f"Bearer {token}"))
        self.database = ProtoReflectionDescriptorDatabase(channel)
        self.pool = descriptor_pool.DescriptorPool(self.database)

    def services(self):
        return list(self.database.get_services())

    def call(self, service, method, request):
        svc = self.pool.FindServiceByName(service)
        m = svc.methods_by_name[method]
        request_class = message_factory.GetMessageClass(m.input_type)
        response_class = message_factory.GetMessageClass(m.output_type)
        message = json_format.Parse(json.dumps(request), request_class())
        stub = self.channel.unary_unary(
            f"/{svc.full_name}/{m.name}",
            request_serializer=lambda x: x.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        return json_format.MessageToDict(stub(message, timeout=10, metadata=self.metadata))


PASSED = []


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    PASSED.append(what)
    print(f"ok  {what}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bro", required=True, help="path to the bro binary")
    args = parser.parse_args()

    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        log = open(os.path.join(data_dir, "serve.log"), "w+")
        # Development identities: the server trusts their key set, the client presents a token.
        idp = os.path.join(data_dir, "idp")
        snippet = subprocess.run([args.bro, "dev", "identities", "--out", idp],
                                 check=True, capture_output=True, text=True).stdout
        config = os.path.join(data_dir, "bro.toml")
        with open(config, "w") as f:
            f.write(snippet)
        token = subprocess.run([args.bro, "dev", "token", "--dir", idp, "--cvr", "12345678"],
                               check=True, capture_output=True, text=True).stdout.strip()
        server = subprocess.Popen(
            [args.bro, "serve", "--config", config,
             "--data-dir", os.path.join(data_dir, "store"), "--listen", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            grpc.channel_ready_future(channel).result(timeout=60)
            client = ReflectedClient(channel, token)
            services = client.services()
            check("bro.v1.CaseService" in services, f"reflection lists bro.v1.CaseService ({services})")
            check("bro.v1.PlanService" in services, f"reflection lists bro.v1.PlanService ({services})")

            created = client.call("bro.v1.CaseService", "CreateCase", {
                "caseId": "reflection-1",
                "requestId": "reflection-create-1",
                "child": {"journalReference": "27.24.00-G01-1-26"},
                "custodyHolders": [{
                    "partyId": "parent-1",
                    "identifier": {"kind": "PERSON_IDENTIFIER_KIND_CPR", "value": "0101901234"},
                    "displayName": "Test Testesen",
                }],
                "placingMunicipality": {"displayName": "Bro Kommune", "cvr": "12345678"},
                "openedOn": {"year": 2026, "month": 1, "day": 10},
            })["case"]
            check(created["name"] == "cases/reflection-1", "CreateCase made cases/reflection-1")

            anonymous = ReflectedClient(channel)
            try:
                anonymous.call("bro.v1.CaseService", "GetCase", {"name": created["name"]})
                check(False, "a call without a token is refused")
            except grpc.RpcError as error:
                check(error.code() == grpc.StatusCode.UNAUTHENTICATED,
                      f"a call without a token is refused: {error.details()}")

            appended = client.call("bro.v1.CaseService", "AppendCaseEvents", {
                "parent": created["name"],
                "etag": created["etag"],
                "requestId": "reflection-append-1",
                "events": [
                    {"occurredOn": {"year": 2026, "month": 1, "day": 15},
                     "placementStarted": {"basis": "PLACEMENT_BASIS_BL46"}},
                    {"occurredOn": {"year": 2026, "month": 1, "day": 15},
                     "supportPersonOffered": {"custodyHolder": "parent-1"}},
                ],
            })
            sequences = [int(e["sequence"]) for e in appended["events"]]
            check(sequences == [2, 3], f"AppendCaseEvents stored events 2 and 3 ({sequences})")

            case = client.call("bro.v1.CaseService", "GetCase", {"name": created["name"]})["case"]
            check(int(case["version"]) == 3, "GetCase reads back version 3")
            check(case["placements"][0]["basis"] == "PLACEMENT_BASIS_BL46", "the placement is there")
            rules = {o["rule"] for o in case.get("obligations", [])}
            check({"bl75", "bl76"} <= rules, f"GetCase carries the obligations ({sorted(rules)})")

            plan = client.call("bro.v1.PlanService", "CreateHolisticPlan", {
                "parent": created["name"],
                "holisticPlanId": "hp-1",
                "covers": ["parent-1"],
                "goals": [{"goalId": "samvaer", "changeInParents": "Kommer til samvær hver uge",
                           "aim": "GOAL_AIM_CONTACT"}],
                "coordinator": {"person": {"displayName": "Karin Koordinator", "phone": "70 00 00 01"}},
                "requestId": "reflection-plan-1",
            })["holisticPlan"]
            check(plan["state"] == "HOLISTIC_PLAN_STATE_PROPOSED",
                  f"PlanService.CreateHolisticPlan proposes a § 78 plan ({plan['name']})")
            agreed = client.call("bro.v1.PlanService", "RecordPlanAgreement", {
                "name": plan["name"], "custodyHolder": "parent-1"})["holisticPlan"]
            check(agreed["state"] == "HOLISTIC_PLAN_STATE_IN_FORCE", "the parent's agreement puts it in force")

            try:
                client.call("bro.v1.CaseService", "AppendCaseEvents", {
                    "parent": created["name"],
                    "events": [{"occurredOn": {"year": 2026, "month": 2, "day": 30},
                                "revisionOffered": {}}],
                })
                check(False, "an impossible date is refused")
            except grpc.RpcError as error:
                check(error.code() == grpc.StatusCode.INVALID_ARGUMENT and "not a date" in error.details(),
                      f"an impossible date is refused: {error.details()}")
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                code = server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                raise
        log.seek(0)
        logs = log.read()
        check(code == 0, f"bro serve exits 0 on SIGTERM (exit {code})")
        check("0101901234" not in logs and "Testesen" not in logs, "the server log holds no CPR number or name")
    print(f"reflection: {len(PASSED)} passed, 0 failed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as failure:
        print(f"FAIL {failure}", file=sys.stderr)
        sys.exit(1)
