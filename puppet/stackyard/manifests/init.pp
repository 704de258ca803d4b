# @summary The stackyard apt repository and its venv packages, from the hiera
#   data `stackyard puppet-data` writes.
#
# The data configures Debian's puppetlabs-apt directly (`apt::sources`,
# `apt::pins`: the release's distribution at priority 990, a project taken
# from another release at 995); this class adds the repository's keyring
# before apt updates and installs every package at its exact published
# version. Moving a version in the data updates apt's lists and upgrades
# exactly that package.
#
# @param packages
#   Package name => exact version (`stackyard::packages`).
# @param keyrings
#   Keyring path => `file` attributes (`stackyard::keyrings`), named by the
#   sources' `keyring`.
# @param wheels
#   Also install the release's wheelhouse package (`stackyard::wheels`).
# @param wheels_package
#   That package and its version.
#
# @example
#   include stackyard
class stackyard (
  Hash[String[1], String[1]] $packages = {},
  Hash[Stdlib::Absolutepath, Hash] $keyrings = {},
  Boolean $wheels = false,
  Hash[String[1], String[1]] $wheels_package = {},
) {
  include apt

  $keyrings.each |$path, $attributes| {
    file { $path:
      *      => $attributes,
      before => Class['apt::update'],
    }
  }

  $wanted = $wheels ? {
    true    => $packages + $wheels_package,
    default => $packages,
  }
  # apt updates its lists when the wanted versions change (and only then):
  # a second run with the same data changes nothing
  file { '/var/lib/stackyard-puppet':
    ensure => directory,
    mode   => '0755',
  }
  file { '/var/lib/stackyard-puppet/versions':
    ensure  => file,
    mode    => '0644',
    content => join($wanted.keys.sort.map |$name| { "${name}=${wanted[$name]}\n" }, ''),
    notify  => Class['apt::update'],
  }

  $wanted.each |$name, $version| {
    package { $name:
      ensure  => $version,
      require => Class['apt::update'],
    }
  }
}
