"""Corrections applied by scripts/gen_dictionary.py to python-diameter's AVP table.

Each entry is a fact from the cited standard (clause numbers in comments).
"""

from __future__ import annotations

# (code, vendor) -> the name the standard uses, where python-diameter spells it differently.
NAME_FIXES: dict[tuple[int, int], str] = {
    (824, 10415): "SIP-Method",  # TS 32.299 §7.2; python-diameter/Wireshark: "3GPP-SIP-Method"
    (830, 10415): "User-Session-Id",  # TS 32.299 §7.2.242; python-diameter: "User-Session-ID"
}

# Names used by more than one (code, vendor): which one keeps the plain name. The others are
# renamed "<Name>.<vendor>.<code>" so that every name maps to exactly one AVP.
NAME_PREFERENCE: dict[str, tuple[int, int]] = {
    # Ro uses the 3GPP SIP-Method inside Event-Type (TS 32.299); RFC 4740's is 393/0.
    "SIP-Method": (824, 10415),
    "Filter-Id": (11, 0),  # RFC 7155 §4.4.9
    "MAC-Address": (524, 0),  # RFC 5777 §4.1.7.8
    "Originator": (864, 10415),  # TS 32.299 §7.2.123
    "Application-Specific-Data": (3458, 10415),
}

# Precise RFC 6733 §4.3 derived types.
TYPE_FIXES: dict[str, str] = {
    # RFC 6733 §8.8, §6.3-6.5, §6.7: DiameterIdentity.
    "Origin-Host": "DiameterIdentity",
    "Origin-Realm": "DiameterIdentity",
    "Destination-Host": "DiameterIdentity",
    "Destination-Realm": "DiameterIdentity",
    "Route-Record": "DiameterIdentity",
    "Proxy-Host": "DiameterIdentity",
    "Error-Reporting-Host": "DiameterIdentity",
    "Alternate-Peer": "DiameterIdentity",
    "Redirect-Realm": "DiameterIdentity",  # RFC 7944
    "SourceID": "DiameterIdentity",  # RFC 7683
    "MIP-Candidate-Home-Agent-Host": "DiameterIdentity",  # RFC 5779
    "Primary-OCS-Charging-Function-Name": "DiameterIdentity",  # TS 29.061
    "Secondary-OCS-Charging-Function-Name": "DiameterIdentity",  # TS 29.061
    "3GPP-AAA-Server-Name": "DiameterIdentity",  # TS 29.273
    "TDF-Destination-Host": "DiameterIdentity",  # TS 29.212
    "TDF-Destination-Realm": "DiameterIdentity",  # TS 29.212
    "Coupled-Node-Diameter-ID": "DiameterIdentity",  # TS 29.272
    "MME-Name": "DiameterIdentity",  # TS 29.173
    "MME-Realm": "DiameterIdentity",
    "SGSN-Name": "DiameterIdentity",
    "SGSN-Realm": "DiameterIdentity",
    "IP-SM-GW-Name": "DiameterIdentity",  # TS 29.336
    "IP-SM-GW-Realm": "DiameterIdentity",
    "SCEF-ID": "DiameterIdentity",  # TS 29.336
    "SCEF-Realm": "DiameterIdentity",
    "SCS-Realm": "DiameterIdentity",
    "SMSF-3GPP-Name": "DiameterIdentity",  # TS 29.338
    "SMSF-Non-3GPP-Name": "DiameterIdentity",
    "SMSF-3GPP-Realm": "DiameterIdentity",
    "SMSF-Non-3GPP-Realm": "DiameterIdentity",
    "RACS-Contact-Point": "DiameterIdentity",  # ETSI ES 283 034 (e4)
    # DiameterURI: RFC 6733 §6.12, RFC 4740, TS 29.229.
    "Redirect-Host": "DiameterURI",
    "SIP-Accounting-Server-URI": "DiameterURI",
    "SIP-Credit-Control-Server-URI": "DiameterURI",
    "Primary-Event-Charging-Function-Name": "DiameterURI",
    "Secondary-Event-Charging-Function-Name": "DiameterURI",
    "Primary-Charging-Collection-Function-Name": "DiameterURI",
    "Secondary-Charging-Collection-Function-Name": "DiameterURI",
    # IPFilterRule: RFC 4006 §8.36, RFC 7155, TS 29.214 §5.3.8, TS 29.212.
    "Restriction-Filter-Rule": "IPFilterRule",
    "NAS-Filter-Rule": "IPFilterRule",
    "Flow-Description": "IPFilterRule",
    "TFT-Filter": "IPFilterRule",
    "Packet-Filter-Content": "IPFilterRule",
    "Tunnel-Header-Filter": "IPFilterRule",  # TS 29.212
    "MIP-Filter-Rule": "IPFilterRule",  # RFC 4004
    "Routing-Policy": "IPFilterRule",  # TS 29.273
}

# Enumerated AVPs (RFC 6733 §4.3.1) python-diameter types as Integer32 even in its source. (Those
# its source marks AvpEnumerated, an alias of AvpInteger32 at run time, the generator recovers
# from the source text; checked against Wireshark's dictionary, none are left to list here.)
ENUMERATED: list[str] = []

# AVPs whose flag rules say the M bit MUST NOT be set (RFC 6733 §4.5, RFC 4006 §8, TS 29.212
# table 5.3.1, TS 29.214 table 5.3.1, TS 32.299 table 7.2); python-diameter sets M on them.
M_BIT_MUST_NOT: list[str] = [
    "Firmware-Revision", "Product-Name", "Error-Message", "Error-Reporting-Host",
    "AF-Signalling-Protocol", "Sponsoring-Action", "Max-Supported-Bandwidth-DL",
    "Max-Supported-Bandwidth-UL", "Min-Desired-Bandwidth-DL", "Min-Desired-Bandwidth-UL",
    "MCPTT-Identifier", "Service-Authorization-Info", "Priority-Sharing-Indicator",
    "AF-Requested-Data", "Content-Version", "Pre-emption-Control-Info",
    "Extended-Max-Requested-BW-DL", "Extended-Max-Requested-BW-UL",
    "Extended-Max-Supported-BW-DL", "Extended-Max-Supported-BW-UL",
    "Extended-Min-Desired-BW-DL", "Extended-Min-Desired-BW-UL", "Extended-Min-Requested-BW-DL",
    "Extended-Min-Requested-BW-UL", "MCVideo-Identifier", "IMS-Content-Identifier",
    "IMS-Content-Type", "SIP-Digest-Authenticate", "Wildcarded-IMPU", "UAR-Flags",
    "Loose-Route-Indication", "SCSCF-Restoration-Info", "Path", "Contact", "Subscription-Info",
    "Call-ID-SIP-Header", "From-SIP-Header", "To-SIP-Header", "Record-Route",
    "Associated-Registered-Identities", "Multiple-Registration-Indication", "Restoration-Info",
    "Session-Priority", "Identity-with-Emergency-Registration", "Priviledged-Sender-Indication",
    "Allowed-WAF-WWSF-Identities", "RAT-Type", "Event-Report-Indication", "CoA-IP-Address",
    "Tunnel-Header-Filter", "Tunnel-Header-Length", "Tunnel-Information", "CoA-Information",
    "APN-Aggregate-Max-Bitrate-DL", "APN-Aggregate-Max-Bitrate-UL", "Default-EPS-Bearer-QoS",
    "AN-GW-Address", "Security-Parameter-Index", "Flow-Label", "Flow-Information",
    "Packet-Filter-Content", "Packet-Filter-Identifier", "Packet-Filter-Information",
    "Packet-Filter-Operation", "Resource-Allocation-Notification", "Monitoring-Key",
    "Usage-Monitoring-Information", "Usage-Monitoring-Level", "Usage-Monitoring-Report",
    "Usage-Monitoring-Support", "CSG-Information-Reporting", "Packet-Filter-Usage",
    "Charging-Correlation-Indicator", "Routing-Rule-Remove", "Routing-Rule-Definition",
    "Routing-Filter", "Routing-IP-Address", "Flow-Direction", "Routing-Rule-Install",
    "Credit-Management-Status", "Redirect-Information", "Redirect-Support", "TDF-Information",
    "TDF-Application-Identifier", "TDF-Destination-Host", "TDF-Destination-Realm",
    "TDF-IP-Address", "Application-Detection-Information", "PS-to-CS-Session-Continuity",
    "User-Id", "ICS-Indicator", "IMS-Voice-Over-PS-Sessions-Supported",
    "Homogeneous-Support-of-IMS-Voice-Over-PS-Sessions", "Last-UE-Activity-Time",
    "EPS-User-State", "EPS-Location-Information", "MME-User-State", "SGSN-User-State",
    "Non-3GPP-IP-Access", "Non-3GPP-IP-Access-APN", "AN-Trusted", "PPR-Flags",
    "WLAN-Identifier", "TWAN-Access-Info", "Access-Authorization-Flags",
    "TWAN-Default-APN-Context-Id", "Full-Network-Name", "Short-Network-Name",
    "AAA-Failure-Indication", "Transport-Access-Type", "DER-Flags", "DEA-Flags", "RAR-Flags",
    "DER-S6b-Flags", "Access-Network-Info", "TWAN-Connection-Mode",
    "TWAN-Connectivity-Parameters", "Connectivity-Flags", "TWAN-PCO", "TWAG-CP-Address",
    "TWAG-UP-Address", "TWAN-S2a-Failure-Cause", "SM-Back-Off-Timer", "WLCP-Key",
    "Origination-Time-Stamp", "Maximum-Wait-Time", "Emergency-Services", "AAR-Flags",
    "IMEI-Check-In-VPLMN-Result", "ERP-Authorization", "MME-Location-Information",
    "SGSN-Location-Information", "E-UTRAN-Cell-Global-Identity", "Tracking-Area-Identity",
    "Cell-Global-Identity", "Routing-Area-Identity", "Location-Area-Identity",
    "Service-Area-Identity", "Geographical-Information", "Geodetic-Information",
    "Current-Location-Retrieved", "Age-Of-Location-Information", "Active-APN",
    "SIPTO-Permission", "Error-Diagnostic", "UE-SRVCC-Capability", "MPS-Priority",
    "VPLMN-LIPA-Allowed", "LIPA-Permission", "Subscribed-Periodic-RAU-TAU-Timer",
    "Ext-PDP-Type", "Ext-PDP-Address", "MDT-Configuration", "Job-Type", "Area-Scope",
    "List-Of-Measurements", "Reporting-Trigger", "Report-Interval", "Report-Amount",
    "Event-Threshold-RSRP", "Event-Threshold-RSRQ", "Logging-Interval", "Logging-Duration",
    "MDT-User-Consent", "PUR-Flags", "Subscribed-VSRVCC", "Equivalent-PLMN-List", "CLR-Flags",
    "Non-IP-PDN-Type-Indicator", "Non-IP-Data-Delivery-Mechanism",
    "Additional-Context-Identifier", "SCEF-Realm", "Subscription-Data-Deletion",
    "Preferred-Data-Mode", "Emergency-Info", "V2X-Subscription-Data", "V2X-Permission",
    "PDN-Connection-Continuity", "eDRX-Cycle-Length", "eDRX-Cycle-Length-Value", "UE-PC5-AMBR",
    "MBSFN-Area", "MBSFN-Area-ID", "Carrier-Frequency", "RDS-Indicator", "Service-Gap-Time",
    "Aerial-UE-Subscription-Information", "Broadcast-Location-Assistance-Data-Types",
    "Paging-Time-Window", "Operation-Mode", "Paging-Time-Window-Length",
    "Core-Network-Restrictions", "eDRX-Related-RAT", "Interworking-5GS-Indicator",
    "Ethernet-PDN-Type-Indicator", "Subscribed-ARPI", "IAB-Operation-Permission",
    "V2X-Subscription-Data-Nr", "UE-PC5-QoS", "PC5-QoS-Flow", "5QI", "PC5-Flow-Bitrates",
    "Guaranteed-Flow-Bitrates", "Maximum-Flow-Bitrates", "PC5-Range", "PC5-Link-AMBR",
    "Mute-Notification", "Default-Bearer-Indication", "PRA-Install", "PRA-Remove",
    "3GPP-PS-Data-Off-Status-Gx", "Extended-APN-AMBR-DL", "Extended-APN-AMBR-UL",
    "Extended-GBR-DL", "Extended-GBR-UL", "Max-PLR-DL", "Max-PLR-UL", "UE-Status",
    "Old-Reference-Number", "Enhanced-Coverage-Restriction",
    "Enhanced-Coverage-Restriction-Data", "Restricted-PLMN-List", "Allowed-PLMN-List",
    "Requested-Validity-Time", "Granted-Validity-Time", "NIDD-Authorization-Update",
    "Loss-Of-Connectivity-Reason", "Group-Reporting-Guard-Timer", "CIA-Flags",
    "Group-Monitoring-Event-Report", "Group-Monitoring-Event-Report-Item", "RIR-Flags",
    "Type-Of-External-Identifier", "APN-Validity-Time", "Suggested-Network-Configuration",
    "Monitoring-Event-Report-Status", "PLMN-ID-Requested", "AdditionalIdentifiers", "NIR-Flags",
    "Reporting-Time-Stamp", "NIA-Flags", "Group-User-Identifier", "MTC-Provider-Info",
    "MTC-Provider-ID", "PDN-Connectivity-Status-Configuration",
    "PDN-Connectivity-Status-Report", "PDN-Connectivity-Status-Type", "Traffic-Profile",
    "Trigger-Action", "MTC-Error-Diagnostic", "TFR-Flags", "SM-Delivery-Failure-Cause",
    "SRR-Flags", "SM-Delivery-Not-Intended", "MWD-Status", "MME-Absent-User-Diagnostic-SM",
    "MSC-Absent-User-Diagnostic-SM", "SGSN-Absent-User-Diagnostic-SM", "SM-Delivery-Outcome",
    "MME-SM-Delivery-Outcome", "MSC-SM-Delivery-Outcome", "SGSN-SM-Delivery-Outcome",
    "IP-SM-GW-SM-Delivery-Outcome", "SM-Delivery-Cause", "Absent-User-Diagnostic-SM",
    "RDR-Flags", "Maximum-UE-Availability-Time", "Maximum-Retransmission-Time",
    "Requested-Retransmission-Time", "SMS-GMSC-Address", "SMS-GMSC-Alert-Event",
    "SMSF-3GPP-Absent-User-Diagnostic-SM", "SMSF-Non-3GPP-Absent-User-Diagnostic-SM",
    "SMSF-3GPP-SM-Delivery-Outcome", "SMSF-Non-3GPP-SM-Delivery-Outcome", "SMSF-3GPP-Number",
    "SMSF-Non-3GPP-Number", "SMSF-3GPP-Name", "SMSF-Non-3GPP-Name", "SMSF-3GPP-Realm",
    "SMSF-Non-3GPP-Realm", "SMSF-3GPP-Address", "SMSF-Non-3GPP-Address",
    "Idle-Status-Indication", "Idle-Status-Timestamp", "Active-Time",
    "Requested-Information-353", "Binding-information", "Binding-Input-List",
    "Binding-Output-List", "V6-Transport-Address", "V4-Transport-Address",
    "Requested-Information-457", "Reservation-Priority", "ETSI-Service-Class",
]

# (code, vendor, name, type, mandatory, reference) for AVPs python-diameter lacks.
# python-diameter 0.9.0 already has every Gx/Rx/Ro AVP of TS 29.212/29.214/32.299 up to Rel-14 that
# OpenPCC uses (the tests check ~180 of them by code); these Rx Rel-15 ones (FLUS, TS 26.238) it
# lacks. M bit: MUST NOT, as for every Rx AVP added after Rel-8 (TS 29.214 table 5.3.1).
EXTRA_AVPS: list[tuple[int, int, str, str, bool, str]] = [
    (566, 10415, "FLUS-Identifier", "OctetString", False, "TS 29.214 §5.3.63"),
    (567, 10415, "Desired-Max-Latency", "Float32", False, "TS 29.214 §5.3.64"),
    (568, 10415, "Desired-Max-Loss", "Float32", False, "TS 29.214 §5.3.65"),
]
