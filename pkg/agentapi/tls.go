package agentapi

// CAFile is where the agent's initramfs carries the CA that metald's HTTPS
// certificate chains to: metald appends it to the initrd it serves when
// TLS is on, and the agent adds it to its trusted roots.
const CAFile = "/etc/metal/ca.pem"
