"""Views of the sharing app; the share wizard lives in sharing/wizard.py."""
