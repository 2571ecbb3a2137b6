"""Integrators' view of the gateway: python zeep loads each served WSDL (banks,
unip, caterers) and calls every operation with no hand edits. Run by
scripts/soap.sh against the real binary in either mode; the platform must
already hold participants BANK01 (bank "zeep-bank"), AGENCY1 (agency, a УНиП
supplier) and CATERER1 (caterer of org-z, which serves school zs1), each
granted its endpoint's operations, and account ZEEP-1."""

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


def message(status="REQUEST", sender="BANK01", service="banks"):
    return {
        "Sender": {"Code": sender, "Name": "IS"},
        "Recipient": {"Code": "TMNPORTAL", "Name": "Portal"},
        "ServiceName": service,
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

# УНиП: an agency ИС issues a charge (the УИН comes back), exports it and cancels it.
unip = zeep.Client(f"{base}/soap/unip?wsdl")


def other(client, service, sender, op, app_data, message_id=None):
    message_id = message_id or str(uuid.uuid4())
    r = getattr(client.service, op)(Message=message(sender=sender, service=service),
                                    MessageData={"AppData": {op: app_data}}, _soapheaders=header(message_id))
    r = r.body
    assert r.Message.RequestIdRef == message_id, r.Message
    return r


today = now.date()
charge_data = {
    "Payer": {"Name": "Иванов Иван Иванович", "Snils": "112-233-445 95"},
    "Purpose": "Плата за присмотр и уход", "Amount": decimal.Decimal("1250.50"),
    "DueDate": today + datetime.timedelta(days=30), "Kbk": "07511302995020000130", "Oktmo": "71701000",
    "Payee": {"Name": "Департамент образования", "Inn": "7202029213", "Kpp": "720301001",
              "Account": "03234643717010006700", "Bik": "047102001"},
}
issued = other(unip, "unip", "AGENCY1", "ImportCharge", charge_data)
assert issued.Message.Status == "RESULT", issued
charge = issued.MessageData.AppData.Charge
assert charge.Uin.startswith("ZEEP0001") and charge.Quittance == "not_matched", charge
exported = other(unip, "unip", "AGENCY1", "ExportPayments", {"Uins": {"Uin": [charge.Uin]}})
assert [c.Uin for c in exported.MessageData.AppData.Export.Charges.Charge] == [charge.Uin], exported
by_period = other(unip, "unip", "AGENCY1", "ExportPayments", {"From": today, "To": today})
assert by_period.Message.Status == "RESULT", by_period
cancelled = other(unip, "unip", "AGENCY1", "CancelCharge", {"Uin": charge.Uin, "Reason": "ошибочно"})
assert cancelled.MessageData.AppData.Charge.Status == "cancelled", cancelled
wrong = other(unip, "unip", "AGENCY1", "ImportCharge", dict(charge_data, Kbk="123"))
assert wrong.Message.Status == "REJECT" and wrong.MessageData.AppData.Error.Path.endswith("/Kbk"), wrong

# Caterers: the catalogue, a day menu, procurement and the day's requests.
caterers = zeep.Client(f"{base}/soap/caterers?wsdl")
catalog = other(caterers, "caterers", "CATERER1", "UploadCatalog", {
    "Dishes": {"Dish": [{"Id": "z-soup", "Name": "Суп", "YieldGrams": 250, "Price": decimal.Decimal("40.00"),
                         "Allergens": {"Allergen": ["celery"]}},
                        {"Id": "z-tea", "Name": "Чай", "YieldGrams": 200, "Price": decimal.Decimal("5.00")}]},
    "Complexes": {"Complex": [{"Code": "zc1", "Name": "Обед", "MenuType": "standard", "AgeCategory": "7-11",
                               "MealKind": "lunch", "Price": decimal.Decimal("45.00"), "Dishes": {"Dish": ["z-soup", "z-tea"]}}]},
    "Extras": {"Extra": [{"Id": "z-juice", "Name": "Сок", "Kind": "supplement", "Price": decimal.Decimal("25.00")}]},
})
assert catalog.Message.Status == "RESULT", catalog
assert [c.Id for c in catalog.MessageData.AppData.Catalog.Complexes.Complex] == ["zc1.v1"], catalog
day = today + datetime.timedelta(days=2)
menu = other(caterers, "caterers", "CATERER1", "SetDayMenu", {
    "School": "zs1", "Date": day, "MealKind": "lunch", "Complexes": {"Complex": ["zc1"]}, "Default": "zc1"})
assert menu.Message.Status == "RESULT" and menu.MessageData.AppData.DayMenu.Default == "zc1", menu
procurement = other(caterers, "caterers", "CATERER1", "Procurement", {})
assert procurement.Message.Status == "RESULT", procurement
requests = other(caterers, "caterers", "CATERER1", "ClassRequests", {"School": "zs1"})
assert requests.Message.Status == "RESULT", requests

print("zeep: unip ImportCharge, ExportPayments, CancelCharge and a REJECT; caterers UploadCatalog, SetDayMenu, Procurement, ClassRequests")
print("zeep: Check, Pay (and its repeat), Cancel, PING, REJECT, INVALID, UploadRegistry and RegistryState as a stock client sees them")
