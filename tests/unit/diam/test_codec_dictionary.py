"""The generated AVP dictionary against the standards and against python-diameter's tables."""

import subprocess
import sys
from pathlib import Path

import pytest
from diameter.message.avp.dictionary import AVP_DICTIONARY, AVP_VENDOR_DICTIONARY

from diam.dictionary import AvpType, all_defs, avp_by_code, avp_def

ROOT = Path(__file__).resolve().parents[3]

# name: code, per RFC 6733 §4.5, RFC 4006 §8/§12, RFC 7155 (vendor 0).
BASE = {
    "User-Name": 1,
    "Class": 25,
    "Session-Timeout": 27,
    "Proxy-State": 33,
    "Event-Timestamp": 55,
    "Host-IP-Address": 257,
    "Auth-Application-Id": 258,
    "Acct-Application-Id": 259,
    "Vendor-Specific-Application-Id": 260,
    "Redirect-Host-Usage": 261,
    "Redirect-Max-Cache-Time": 262,
    "Session-Id": 263,
    "Origin-Host": 264,
    "Supported-Vendor-Id": 265,
    "Vendor-Id": 266,
    "Firmware-Revision": 267,
    "Result-Code": 268,
    "Product-Name": 269,
    "Disconnect-Cause": 273,
    "Auth-Session-State": 277,
    "Origin-State-Id": 278,
    "Failed-AVP": 279,
    "Proxy-Host": 280,
    "Error-Message": 281,
    "Route-Record": 282,
    "Destination-Realm": 283,
    "Proxy-Info": 284,
    "Re-Auth-Request-Type": 285,
    "Authorization-Lifetime": 291,
    "Redirect-Host": 292,
    "Destination-Host": 293,
    "Error-Reporting-Host": 294,
    "Termination-Cause": 295,
    "Origin-Realm": 296,
    "Experimental-Result": 297,
    "Experimental-Result-Code": 298,
    "Inband-Security-Id": 299,
    "CC-Input-Octets": 412,
    "CC-Output-Octets": 414,
    "CC-Request-Number": 415,
    "CC-Request-Type": 416,
    "CC-Time": 420,
    "CC-Total-Octets": 421,
    "Check-Balance-Result": 422,
    "Cost-Information": 423,
    "Cost-Unit": 424,
    "Currency-Code": 425,
    "Credit-Control-Failure-Handling": 427,
    "Exponent": 429,
    "Final-Unit-Indication": 430,
    "Granted-Service-Unit": 431,
    "Rating-Group": 432,
    "Redirect-Address-Type": 433,
    "Redirect-Server": 434,
    "Redirect-Server-Address": 435,
    "Requested-Action": 436,
    "Requested-Service-Unit": 437,
    "Restriction-Filter-Rule": 438,
    "Service-Identifier": 439,
    "Subscription-Id": 443,
    "Subscription-Id-Data": 444,
    "Unit-Value": 445,
    "Used-Service-Unit": 446,
    "Value-Digits": 447,
    "Validity-Time": 448,
    "Final-Unit-Action": 449,
    "Subscription-Id-Type": 450,
    "Tariff-Time-Change": 451,
    "Tariff-Change-Usage": 452,
    "Multiple-Services-Indicator": 455,
    "Multiple-Services-Credit-Control": 456,
    "User-Equipment-Info": 458,
    "Service-Context-Id": 461,
}
# name: code, vendor 10415: TS 29.212 (Gx), TS 29.214 (Rx), TS 29.229 (features), TS 32.299 (Ro).
TGPP = {
    "Bearer-Usage": 1000,
    "Charging-Rule-Install": 1001,
    "Charging-Rule-Remove": 1002,
    "Charging-Rule-Definition": 1003,
    "Charging-Rule-Base-Name": 1004,
    "Charging-Rule-Name": 1005,
    "Event-Trigger": 1006,
    "Metering-Method": 1007,
    "Offline": 1008,
    "Online": 1009,
    "Precedence": 1010,
    "QoS-Information": 1016,
    "Charging-Rule-Report": 1018,
    "PCC-Rule-Status": 1019,
    "Bearer-Control-Mode": 1023,
    "Network-Request-Support": 1024,
    "Guaranteed-Bitrate-DL": 1025,
    "Guaranteed-Bitrate-UL": 1026,
    "IP-CAN-Type": 1027,
    "QoS-Class-Identifier": 1028,
    "Rule-Failure-Code": 1031,
    "RAT-Type": 1032,
    "Allocation-Retention-Priority": 1034,
    "APN-Aggregate-Max-Bitrate-DL": 1040,
    "APN-Aggregate-Max-Bitrate-UL": 1041,
    "Revalidation-Time": 1042,
    "Priority-Level": 1046,
    "Pre-emption-Capability": 1047,
    "Pre-emption-Vulnerability": 1048,
    "Default-EPS-Bearer-QoS": 1049,
    "AN-GW-Address": 1050,
    "Flow-Information": 1058,
    "Monitoring-Key": 1066,
    "Usage-Monitoring-Information": 1067,
    "Usage-Monitoring-Level": 1068,
    "Usage-Monitoring-Report": 1069,
    "Usage-Monitoring-Support": 1070,
    "Flow-Direction": 1080,
    "Abort-Cause": 500,
    "Access-Network-Charging-Address": 501,
    "AF-Application-Identifier": 504,
    "AF-Charging-Identifier": 505,
    "Flow-Description": 507,
    "Flow-Number": 509,
    "Flows": 510,
    "Flow-Status": 511,
    "Flow-Usage": 512,
    "Specific-Action": 513,
    "Max-Requested-Bandwidth-DL": 515,
    "Max-Requested-Bandwidth-UL": 516,
    "Media-Component-Description": 517,
    "Media-Component-Number": 518,
    "Media-Sub-Component": 519,
    "Media-Type": 520,
    "RR-Bandwidth": 521,
    "RS-Bandwidth": 522,
    "SIP-Forking-Indication": 523,
    "Codec-Data": 524,
    "Service-URN": 525,
    "Acceptable-Service-Info": 526,
    "Service-Info-Status": 527,
    "AF-Signalling-Protocol": 529,
    "Rx-Request-Type": 533,
    "Min-Requested-Bandwidth-DL": 534,
    "Min-Requested-Bandwidth-UL": 535,
    "Supported-Features": 628,
    "Feature-List-ID": 629,
    "Feature-List": 630,
    "Event-Type": 823,
    "SIP-Method": 824,
    "Event": 825,
    "Content-Type": 826,
    "Role-Of-Node": 829,
    "User-Session-Id": 830,
    "Calling-Party-Address": 831,
    "Called-Party-Address": 832,
    "Time-Stamps": 833,
    "SIP-Request-Timestamp": 834,
    "SIP-Response-Timestamp": 835,
    "Inter-Operator-Identifier": 838,
    "Originating-IOI": 839,
    "Terminating-IOI": 840,
    "IMS-Charging-Identifier": 841,
    "Application-Server-Information": 850,
    "Cause-Code": 861,
    "Node-Functionality": 862,
    "Time-Quota-Threshold": 868,
    "Volume-Quota-Threshold": 869,
    "Trigger-Type": 870,
    "Quota-Holding-Time": 871,
    "3GPP-Reporting-Reason": 872,
    "Service-Information": 873,
    "IMS-Information": 876,
    "Requested-Party-Address": 1251,
    "Access-Network-Information": 1263,
    "Trigger": 1264,
    "Low-Balance-Indication": 2020,
    "Remaining-Balance": 2021,
    "FLUS-Identifier": 566,
    "Desired-Max-Latency": 567,
    "Desired-Max-Loss": 568,
}
TYPES = {
    "Origin-Host": AvpType.DIAMETER_IDENTITY,
    "Origin-Realm": AvpType.DIAMETER_IDENTITY,
    "Destination-Host": AvpType.DIAMETER_IDENTITY,
    "Destination-Realm": AvpType.DIAMETER_IDENTITY,
    "Route-Record": AvpType.DIAMETER_IDENTITY,
    "Proxy-Host": AvpType.DIAMETER_IDENTITY,
    "Error-Reporting-Host": AvpType.DIAMETER_IDENTITY,
    "Redirect-Host": AvpType.DIAMETER_URI,
    "Flow-Description": AvpType.IP_FILTER_RULE,
    "Restriction-Filter-Rule": AvpType.IP_FILTER_RULE,
    "Event-Trigger": AvpType.ENUMERATED,
    "CC-Request-Type": AvpType.ENUMERATED,
    "Flow-Status": AvpType.ENUMERATED,
    "Final-Unit-Action": AvpType.ENUMERATED,
    "Node-Functionality": AvpType.ENUMERATED,
    "Role-Of-Node": AvpType.ENUMERATED,
    "Reservation-Priority": AvpType.ENUMERATED,
    "Host-IP-Address": AvpType.ADDRESS,
    "Event-Timestamp": AvpType.TIME,
    "Tariff-Time-Change": AvpType.TIME,
    "Value-Digits": AvpType.INTEGER64,
    "CC-Total-Octets": AvpType.UNSIGNED64,
    "Session-Id": AvpType.UTF8STRING,
    "Multiple-Services-Credit-Control": AvpType.GROUPED,
    "Framed-IP-Address": AvpType.OCTET_STRING,  # RFC 7155 §4.4.10.5.1: 4 raw octets, no family
}
# RFC 6733 §4.5 / TS 29.212 table 5.3.1: M bit MUST NOT be set.
M_MUST_NOT = [
    "Product-Name",
    "Firmware-Revision",
    "Error-Message",
    "Error-Reporting-Host",
    "APN-Aggregate-Max-Bitrate-UL",
    "Default-EPS-Bearer-QoS",
    "Flow-Information",
    "Usage-Monitoring-Information",
    "Monitoring-Key",
]


@pytest.mark.parametrize(("table", "vendor"), [(BASE, 0), (TGPP, 10415)])
def test_codes_and_vendors_match_the_standards(table: dict[str, int], vendor: int) -> None:
    wrong = {
        n: (avp_def(n).code, avp_def(n).vendor)
        for n, c in table.items()
        if (avp_def(n).code, avp_def(n).vendor) != (c, vendor)
    }
    assert wrong == {}


def test_precise_types_and_m_bits() -> None:
    assert {n: avp_def(n).type for n in TYPES} == TYPES
    assert [n for n in M_MUST_NOT if avp_def(n).mandatory] == []
    assert avp_def("Session-Id").mandatory and avp_def("Charging-Rule-Install").mandatory
    etsi = avp_def("Reservation-Priority")
    assert (etsi.code, etsi.vendor) == (458, 13019)


def test_lookups() -> None:
    assert avp_by_code(1001, 10415) is avp_def("Charging-Rule-Install")
    assert avp_by_code(1001, 0) is None
    assert avp_by_code(458, 0).name == "User-Equipment-Info"
    with pytest.raises(KeyError, match="Not-An-AVP"):
        avp_def("Not-An-AVP")
    names = [d.name for d in all_defs()]
    assert len(names) == len(set(names)) > 2500


def test_agrees_with_python_diameter_on_code_and_vendor() -> None:
    theirs: dict[str, set[tuple[int, int]]] = {}
    for vendor, table in [(0, AVP_DICTIONARY), *AVP_VENDOR_DICTIONARY.items()]:
        for code, info in table.items():
            theirs.setdefault(info["name"], set()).add((code, vendor))
    # python-diameter names TS 32.299's SIP-Method (824/10415) "3GPP-SIP-Method" and gives the
    # plain name to RFC 4740's (393/0); Ro needs the 3GPP one (inside Event-Type, TS 32.299).
    renamed = {"SIP-Method"}
    assert theirs["3GPP-SIP-Method"] == {(824, 10415)}
    checked = 0
    for d in all_defs():
        if d.name in theirs and d.name not in renamed:
            checked += 1
            assert (d.code, d.vendor) in theirs[d.name], d
    assert checked > 2500
    assert sum(len(keys) for keys in theirs.values()) <= len(all_defs())


def test_generated_table_is_current() -> None:
    """scripts/gen_dictionary.py reproduces diam/_avps.py exactly."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, 'scripts'); import gen_dictionary as g; "
            "rows = g.build(); from diam._avps import AVPS; print(tuple(rows) == AVPS)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "True"
