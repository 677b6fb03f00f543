"""PCRF: Gx and Rx applications, PCC rules from SDP, Rx-Gx binding."""
