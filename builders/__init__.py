"""Buildbot for stackyard, imported by master.cfg.

- ``plan``: builders, steps, schedulers and pollers as plain data, from
  stackyard.toml, the recipes and the releases (unit-tested, no Buildbot);
- ``tags``: which upstream tags belong to which release (recipes from git);
- ``deliverables``: which openstack/releases versions start which builds (recipes from the index);
- ``master``: the plan as Buildbot objects (BuildmasterConfig);
- ``poller``: the tag poller (one change per new tag, even on a seen commit);
- ``releases_poller``: the openstack/releases poller (one change per new version of a recipe from the index);
- ``ctl``: ``make buildbot-up`` / ``buildbot-down``.
"""
