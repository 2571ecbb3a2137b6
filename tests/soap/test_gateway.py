"""A bank integrator's view of the gateway: python zeep loads the served WSDL
and calls every operation with no hand edits. Run by scripts/soap.sh against
the real binary in either mode; the platform must already hold participant
BANK01 (bank "zeep-bank", granted everything) and account ZEEP-1."""

import datetime
import decimal
import sys
import uuid

import zeep
from zeep.exceptions import Fault

base = sys.argv[1]
client = zeep.Client(f"{base}/soap/banks?wsdl")
SMEV = "{http://smev.gosuslugi.ru/rev120315}"
header_el = client.get_element(f"{SMEV}Header")
now = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=5)))


def message(status="REQUEST"):
    return {
        "Sender": {"Code": "BANK01", "Name": "Bank"},
        "Recipient": {"Code": "TMNPORTAL", "Name": "Portal"},
        "ServiceName": "banks",
        "TypeCode": "OTHR",
        "Status": status,
        "Date": now,
        "ExchangeType": "1",
    }


def header(message_id):
    return [header_el(NodeId="zeep", MessageId=message_id, TimeStamp=now, MessageClass="REQUEST")]


def call(op, app_data, message_id=None, status="REQUEST", document=None, request_id_ref=None):
    message_id = message_id or str(uuid.uuid4())
    data = {"AppData": {op: app_data}} if app_data is not None else {}
    if document is not None:
        data["AppDocument"] = document
    m = message(status)
    if request_id_ref:
        m["RequestIdRef"] = request_id_ref
    r = getattr(client.service, op)(Message=m, MessageData=data, _soapheaders=header(message_id))
    # The output declares smev:Header too, so zeep answers body and header.
    assert r.header.header.MessageClass == "RESPONSE", r.header
    r = r.body
    assert r.Message.RequestIdRef == message_id, r.Message
    return r


def answer(r):
    assert r.Message.Status == "RESULT", r
    return r.MessageData.AppData.Answer


a = answer(call("Check", {"Account": "ZEEP-1"}))
assert a.Code == 0 and a.Result == "OK", a
balance = a.Balance

txn = str(uuid.uuid4())[:20]
pay = {"Account": "ZEEP-1", "Amount": "250.50", "TxnId": txn, "TxnAt": now}
first = answer(call("Pay", pay, message_id="zeep-pay-" + txn))
assert first.Code == 0 and first.Balance == balance + decimal.Decimal("250.50"), first
again = answer(call("Pay", pay, message_id="zeep-pay-" + txn))
assert again.PaymentId == first.PaymentId and again.Code == 0, "a repeated message gets the first answer"
dup = answer(call("Pay", pay))
assert dup.Result == "DUPLICATE", dup

cancel = answer(call("Cancel", {"TxnId": txn}))
assert cancel.Result == "OK" and cancel.Balance == balance, cancel

pong = call("Check", None, status="PING")
assert pong.Message.Status == "PING", pong

rejected = client.service.Check(
    Message=dict(message(), Sender={"Code": "NOBODY", "Name": "x"}),
    MessageData={"AppData": {"Check": {"Account": "ZEEP-1"}}},
).body
assert rejected.Message.Status == "REJECT" and rejected.MessageData.AppData.Error.Code == "UNKNOWN_SENDER", rejected

try:
    client.service.Pay(Message=message(), MessageData={"AppData": {"Pay": dict(pay, Amount="1.234")}})
    raise AssertionError("a schema violation must be a Fault")
except Fault as f:
    assert "Amount" in f.message, f.message

# The day's registry as the AppDocument: ACCEPT at once, then STATE until the
# outcome, with the reconciliation report as a document.
day = now.date()
registry_txn = "R" + str(uuid.uuid4())[:18]
registry = (f"{registry_txn};ZEEP-1;100.00;{day:%d.%m.%Y} 09:00:00;Петров\r\n"
            "ИТОГО;1;100.00\r\n").encode("cp1251")
upload_id = "zeep-registry-" + registry_txn
accepted = call("UploadRegistry", {"Format": "csv", "Date": day, "FileName": "zeep.csv"},
                message_id=upload_id, document={"RequestCode": "zeep.csv", "BinaryData": registry})
assert accepted.Message.Status == "ACCEPT", accepted
assert accepted.MessageData.AppData.Accepted.Size == len(registry), accepted
import time
for _ in range(300):
    state = call("RegistryState", None, status="STATE", request_id_ref=upload_id)
    if state.Message.Status != "PROCESS":
        break
    time.sleep(0.1)
assert state.Message.Status == "RESULT", state
assert state.Message.OriginRequestIdRef == upload_id, state.Message
outcome = state.MessageData.AppData.RegistryOutcome
assert outcome.Lines == 1 and outcome.Total == decimal.Decimal("100.00"), outcome
assert {o.name: o.Count for o in outcome.Outcome if o.Count} == {"credited": 1}, outcome
report = state.MessageData.AppDocument.BinaryData.decode("utf-8")
assert registry_txn in report and "зачислено по реестру" in report, report
after = answer(call("Check", {"Account": "ZEEP-1"}))
assert after.Balance == balance + decimal.Decimal("100.00"), after

print("zeep: Check, Pay (and its repeat), Cancel, PING, REJECT, INVALID, UploadRegistry and RegistryState as a stock client sees them")
