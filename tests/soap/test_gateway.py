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


def call(op, app_data, message_id=None, status="REQUEST"):
    message_id = message_id or str(uuid.uuid4())
    data = {"AppData": {op: app_data}} if app_data is not None else {}
    r = getattr(client.service, op)(Message=message(status), MessageData=data, _soapheaders=header(message_id))
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

print("zeep: Check, Pay (and its repeat), Cancel, PING, REJECT and INVALID as a stock client sees them")
