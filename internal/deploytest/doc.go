// Package deploytest holds the tests of the deployment files under deploy/
// (Docker, Swarm, systemd, Vagrant) and the root Vagrantfile. It has no
// code of its own: deploy/ is not Go, and the tests live here so that
// `make test` (which runs ./internal/...) runs them.
//
// What they prove without a container engine or a VM: the Dockerfile's
// build line makes a static binary, the Swarm stack is a valid stack whose
// parts agree with each other, the systemd unit verifies, the shell
// scripts pass shellcheck, and the Vagrant provisioning scripts work for
// real in their test mode (real redis-server processes under a temp dir).
// What they cannot prove (docker build, docker stack deploy, vagrant up)
// each README under deploy/ says.
package deploytest
