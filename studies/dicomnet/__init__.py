"""DICOM on the network: the receiver (C-ECHO, C-STORE) and its peers."""
