package main

import (
	"crypto/tls"
	"fmt"
)

// tlsConfig loads the configured certificate and key, or returns nil when
// TLS is off. The config offers HTTP/2 ("h2") first: net/http serves
// HTTP/1.1 only over a TLSConfig whose NextProtos lacks it.
func (c Config) tlsConfig() (*tls.Config, error) {
	if c.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("PARLEY_TLS_CERT_FILE and PARLEY_TLS_KEY_FILE: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}, nil
}
