class BaseSmsBackend:
    """The interface of an SMS backend, like Django's BaseEmailBackend."""

    def __init__(self, fail_silently=False, **kwargs):
        self.fail_silently = fail_silently

    def open(self):
        """Open a connection to the provider if it needs one."""

    def close(self):
        """Close the connection to the provider."""

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.close()

    def send_messages(self, messages):
        """Send the messages; return how many were sent."""
        raise NotImplementedError
