"""A stand-in stack for engine tests: the real stack's protection shape on dynamic providers.

Run only as an inline program through the Automation API (no Python language host is built
here), against a local file backend with a passphrase secrets provider.
"""
