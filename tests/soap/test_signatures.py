"""Signatures made by signers no one here wrote, and the gateway's own checked
by tools no one here wrote. Run by scripts/soap.sh against the real binary in
either mode, after test_gateway.py (account ZEEP-1 and bank "zeep-bank" exist);
the gateway signs its answers with the ГОСТ key whose certificate is argv[3].

- RSA-SHA256: python signxml signs the Body (detached, exclusive c14n) and the
  signature goes into the SMEV wsse:Security block (actor smev).
- ГОСТ Р 34.10-2012 (256): lxml's exclusive c14n of the Body and of the
  SignedInfo, digested and signed by `openssl dgst -md_gost12_256` (the gost
  engine OPENSSL_CONF loads).
Each verifies and is answered; each altered after signing is REJECTed
SIGNATURE_INVALID; the answers' own signatures (actor recipient) verify with
lxml and `openssl dgst -verify`."""

import base64
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
import uuid

from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner, methods

base, operator, gateway_cert = sys.argv[1:4]
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
SMEV = "http://smev.gosuslugi.ru/rev120315"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
EXC = "http://www.w3.org/2001/10/xml-exc-c14n#"
X509 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
B64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
GOST_SIG = "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256"
GOST_DIGEST = "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-256"
SENDER = "http://smev.gosuslugi.ru/actors/smev"
RECIPIENT = "http://smev.gosuslugi.ru/actors/recipient"

work = tempfile.mkdtemp()


def openssl(*args, data=None):
    r = subprocess.run(["openssl", *args], cwd=work, input=data, capture_output=True)
    assert r.returncode == 0, (args, r.stderr.decode())
    return r.stdout


def path(f):
    return os.path.join(work, f)


def read(f):
    with open(path(f), "rb") as fh:
        return fh.read()


openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        "-keyout", "rsa.key", "-out", "rsa.pem", "-subj", "/CN=BANKSIG RSA")
openssl("req", "-x509", "-newkey", "gost2012_256", "-pkeyopt", "paramset:A", "-md_gost12_256",
        "-nodes", "-days", "30", "-keyout", "gost.key", "-out", "gost.pem", "-subj", "/CN=BANKSIG GOST")


def rest(method, url, body=None):
    req = urllib.request.Request(base + url, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {operator}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        assert r.status in (200, 201), r.status


rest("PUT", "/api/gateway/participants/BANKSIG", {
    "name": "Банк с подписью", "inn": "7707083893", "ogrn": "1027700132195", "kind": "bank",
    "contour": "production", "bank": "zeep-bank",
    "contacts": {"name": "Иванов Иван", "phone": "+7 345 200-00-00", "email": "it@bank.example"},
    "certificates": [read("rsa.pem").decode(), read("gost.pem").decode()]})
rest("PUT", "/api/gateway/participants/BANKSIG/rights/banks.Check")


def envelope(message_id):
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="{SOAP}" xmlns:smev="{SMEV}" xmlns:b="urn:tyumen:portal:gateway:banks:1">
  <soapenv:Header>
    <smev:Header><smev:NodeId>python</smev:NodeId><smev:MessageId>{message_id}</smev:MessageId><smev:TimeStamp>2026-09-14T10:00:00+05:00</smev:TimeStamp><smev:MessageClass>REQUEST</smev:MessageClass></smev:Header>
  </soapenv:Header>
  <soapenv:Body xmlns:wsu="{WSU}" wsu:Id="body">
    <b:Check>
      <smev:Message>
        <smev:Sender><smev:Code>BANKSIG</smev:Code><smev:Name>Банк</smev:Name></smev:Sender>
        <smev:Recipient><smev:Code>TMNPORTAL</smev:Code><smev:Name>Портал</smev:Name></smev:Recipient>
        <smev:ServiceName>banks</smev:ServiceName><smev:TypeCode>OTHR</smev:TypeCode><smev:Status>REQUEST</smev:Status>
        <smev:Date>2026-09-14T10:00:00+05:00</smev:Date><smev:ExchangeType>1</smev:ExchangeType>
      </smev:Message>
      <b:MessageData><b:AppData><b:Check><b:Account>ZEEP-1</b:Account></b:Check></b:AppData></b:MessageData>
    </b:Check>
  </soapenv:Body>
</soapenv:Envelope>""".encode()


def security(root, certificate_pem):
    """An empty wsse:Security of the sender in the envelope's header, with the
    BinarySecurityToken; returns it."""
    der = base64.b64encode(
        openssl("x509", "-outform", "DER", data=certificate_pem)).decode()
    sec = etree.SubElement(root.find(f"{{{SOAP}}}Header"), f"{{{WSSE}}}Security",
                           nsmap={"wsse": WSSE, "wsu": WSU})
    sec.set(f"{{{SOAP}}}actor", SENDER)
    token = etree.SubElement(sec, f"{{{WSSE}}}BinarySecurityToken",
                             EncodingType=B64, ValueType=X509)
    token.set(f"{{{WSU}}}Id", "SenderCertificate")
    token.text = der
    return sec


def key_info():
    return etree.fromstring(
        f'<ds:KeyInfo xmlns:ds="{DS}"><wsse:SecurityTokenReference xmlns:wsse="{WSSE}">'
        f'<wsse:Reference URI="#SenderCertificate" ValueType="{X509}"/></wsse:SecurityTokenReference></ds:KeyInfo>')


def sign_rsa(xml):
    root = etree.fromstring(xml)
    signer = XMLSigner(method=methods.detached, signature_algorithm=SignatureMethod.RSA_SHA256,
                       digest_algorithm=DigestAlgorithm.SHA256,
                       c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signature = signer.sign(root, key=read("rsa.key"), cert=read("rsa.pem").decode(),
                            reference_uri="#body", key_info=key_info())
    security(root, read("rsa.pem")).append(signature)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def c14n(element):
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def sign_gost(xml):
    root = etree.fromstring(xml)
    digest = openssl("dgst", "-md_gost12_256", "-binary", data=c14n(root.find(f"{{{SOAP}}}Body")))
    signature = etree.fromstring(f"""<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo>
<ds:CanonicalizationMethod Algorithm="{EXC}"/><ds:SignatureMethod Algorithm="{GOST_SIG}"/>
<ds:Reference URI="#body"><ds:Transforms><ds:Transform Algorithm="{EXC}"/></ds:Transforms>
<ds:DigestMethod Algorithm="{GOST_DIGEST}"/><ds:DigestValue>{base64.b64encode(digest).decode()}</ds:DigestValue></ds:Reference>
</ds:SignedInfo><ds:SignatureValue/></ds:Signature>""")
    signature.append(key_info())
    security(root, read("gost.pem")).append(signature)
    signed_info = signature.find(f"{{{DS}}}SignedInfo")
    value = openssl("dgst", "-md_gost12_256", "-sign", "gost.key", data=c14n(signed_info))
    signature.find(f"{{{DS}}}SignatureValue").text = base64.b64encode(value).decode()
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def post(body):
    req = urllib.request.Request(f"{base}/soap/banks", data=body, method="POST",
                                 headers={"Content-Type": "text/xml; charset=utf-8"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        return e.read()


def status_and_code(answer):
    root = etree.fromstring(answer)
    status = root.findtext(f".//{{{SMEV}}}Status")
    codes = [e.text for e in root.iter() if etree.QName(e).localname == "Code"]
    return status, codes[-1] if codes else None


def verify_answer(answer):
    """The gateway's signature of its answer, checked with lxml and openssl."""
    root = etree.fromstring(answer)
    blocks = [s for s in root.iter(f"{{{WSSE}}}Security") if s.get(f"{{{SOAP}}}actor") == RECIPIENT]
    assert len(blocks) == 1, answer
    sec = blocks[0]
    der = base64.b64decode(sec.findtext(f"{{{WSSE}}}BinarySecurityToken"))
    expected = openssl("x509", "-outform", "DER", "-in", gateway_cert)
    assert der == expected, "the answer is not signed with the gateway's certificate"
    signed_info = sec.find(f".//{{{DS}}}SignedInfo")
    assert signed_info.find(f"{{{DS}}}SignatureMethod").get("Algorithm") == GOST_SIG
    uri = signed_info.find(f"{{{DS}}}Reference").get("URI")[1:]
    body = root.find(f"{{{SOAP}}}Body")
    assert body.get(f"{{{WSU}}}Id") == uri, "the signature does not cover the Body"
    digest = openssl("dgst", "-md_gost12_256", "-binary", data=c14n(body))
    assert base64.b64encode(digest).decode() == signed_info.findtext(f".//{{{DS}}}DigestValue"), "digest"
    with open(path("answer.der"), "wb") as fh:
        fh.write(der)
    openssl("x509", "-inform", "DER", "-in", "answer.der", "-pubkey", "-noout", "-out", "answer.pub")
    with open(path("answer.sig"), "wb") as fh:
        fh.write(base64.b64decode(sec.findtext(f".//{{{DS}}}SignatureValue")))
    out = openssl("dgst", "-md_gost12_256", "-verify", "answer.pub", "-signature", "answer.sig",
                  data=c14n(signed_info))
    assert b"Verified OK" in out, out


for name, sign in (("signxml RSA-SHA256", sign_rsa), ("lxml + openssl ГОСТ Р 34.10-2012", sign_gost)):
    signed = sign(envelope(str(uuid.uuid4())))
    answer = post(signed)
    assert status_and_code(answer) == ("RESULT", "0"), (name, answer)
    verify_answer(answer)
    altered = sign(envelope(str(uuid.uuid4()))).replace(b"ZEEP-1", b"ZEEP-2")
    answer = post(altered)
    assert status_and_code(answer) == ("REJECT", "SIGNATURE_INVALID"), (name, answer)
    verify_answer(answer)
    print(f"signatures: {name} verified, altered refused; the gateway's ГОСТ answer verified by openssl")
