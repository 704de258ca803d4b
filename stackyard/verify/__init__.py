"""``stackyard verify``: a control plane installed from a release's packages answers a scenario.

``run.verify`` boots a fresh bookworm root with systemd-nspawn, installs the
packages with apt from the release's staging (or promoted) distribution,
configures and starts them as puppet would and runs the scenario with the
``openstack`` client (``scenario``); ``record`` keeps the verdict that
``stackyard promote`` requires (``record.refusals``). Submodules are imported
where used: ``apt_repo`` imports ``record`` and ``run`` imports ``apt_repo``.
"""
