"""DICOM on the network: the receiver (receiver.py, callers.py: C-ECHO, C-STORE),
the department's DICOMweb source (source.py, bring_in.py) and C-STORE to a
destination (store_scu.py)."""
