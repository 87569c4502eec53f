// Package clustertls is the mutual TLS of a Magnetar cluster's internal
// traffic: the gRPC APIs of the metadata service and the bookies, their
// Raft ports, and the connections brokers and bookies make to them.
//
// The model is one CA dedicated to the cluster. Every process (metadata
// node, bookie, broker) has a certificate that CA signed, usable both as a
// server and as a client certificate (extended key usages serverAuth and
// clientAuth): internal servers require a client certificate and verify it
// against the CA, and internal clients present theirs and verify the
// server's against the same CA. Any certificate the CA signed is a member
// of the cluster, whatever its names, so the CA must sign nothing else: a
// CA shared with users or other services would let their certificates in.
//
// A client checks the server's certificate names against the address it
// dials (an IP address SAN for 10.0.0.1:6660, a DNS SAN for
// meta-1.internal:6660), unless Config.ServerName is set: then every
// server's certificate must name that one DNS name, and clients check that
// name instead, which spares a certificate per address.
//
// Config holds the file names (flags --cluster-tls.*, YAML and MAGNETAR_*
// like every setting); cluster TLS is on when the CA, certificate and key
// files are all set, and a partial setting is an error. Load reads the
// files once, checks that the certificate is one the CA signed for both
// uses, and returns the Credentials: the tls.Config of servers and of
// clients, and the gRPC options made of them. The files are read at start
// only: to rotate a certificate, restart the process with the new one
// (certificates of the same CA keep working together); to rotate the CA,
// put both CAs in the CA file of every process first.
package clustertls
