"""The production broker's configuration: Mosquitto 2's config, password file and ACL, generated from the
registry (`hub registry export-mosquitto`). Every device gets its own credentials and may publish only
under its own topics; see `acl.py` for who may do what, and docs/operators/deployment.md.
"""
