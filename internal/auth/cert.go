package auth

import (
	"crypto/tls"
	"crypto/x509"
)

// CertificateRole is a client certificate's role: its subject common name
// (else the first DNS SAN, else "").
func CertificateRole(cert *x509.Certificate) string {
	switch {
	case cert == nil:
		return ""
	case cert.Subject.CommonName != "":
		return cert.Subject.CommonName
	case len(cert.DNSNames) > 0:
		return cert.DNSNames[0]
	}
	return ""
}

// TLSPrincipal is the principal of a TLS connection's client certificate:
// its CertificateRole, Method MethodTLS. Only a certificate the server
// verified counts (tls.VerifyClientCertIfGiven or
// tls.RequireAndVerifyClientCert): one merely presented
// (tls.RequestClientCert, tls.RequireAnyClientCert) proves nothing. It is
// false when cs is nil, holds no verified certificate, or the certificate
// names no role.
func TLSPrincipal(cs *tls.ConnectionState) (Principal, bool) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Principal{}, false
	}
	role := CertificateRole(cs.VerifiedChains[0][0])
	if role == "" {
		return Principal{}, false
	}
	return Principal{Role: role, Method: MethodTLS}, true
}
