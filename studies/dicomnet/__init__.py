"""DICOM on the network: the department's DICOMweb source (source.py, bring_in.py),
C-STORE to a destination (store_scu.py); the receiver lives beside them."""
