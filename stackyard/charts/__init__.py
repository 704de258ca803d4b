"""openstack-helm's charts run on stackyard's images: render the charts' scripts and configuration
(``render``, ``gotemplate``: pure), run them in containers from the pushed images (``run``)."""
