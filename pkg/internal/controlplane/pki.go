package controlplane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// KubeletClientUser is who kube-apiserver is to a kubelet when it forwards
// `kubectl exec`, `attach`, `logs` and `port-forward`: the common name of
// its kubelet client certificate, bound to the ClusterRole
// system:kubelet-api-admin (the kubelet API and nothing else), which the
// kubelet's webhook authorization asks the API server about.
const KubeletClientUser = "kube-apiserver-kubelet-client"

// certLifetime covers any test run; the certificates die with the
// instance's directory anyway.
const certLifetime = 24 * time.Hour

// newKey makes an ECDSA P-256 key and writes it to file (PKCS #8, PEM, 0600).
func newKey(file string) (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key for %s: %w", filepath.Base(file), err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key for %s: %w", filepath.Base(file), err)
	}
	if err := writePEM(file, "PRIVATE KEY", der, 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

func writePEM(file, blockType string, der []byte, mode os.FileMode) error {
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), mode); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(file), err)
	}
	return nil
}

// writeKubeletClientCert makes a CA for kubelet clients (written to
// KubeletClientCAFile, for a kubelet's authentication.x509.clientCAFile)
// and, signed by it, kube-apiserver's client certificate for KubeletClientUser.
func (cp *ControlPlane) writeKubeletClientCert() (certFile, keyFile string, err error) {
	dir := filepath.Join(cp.Dir, "pki")
	caKey, err := newKey(filepath.Join(dir, "kubelet-client-ca.key"))
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "kubelet-client-ca"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := signCert(caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", fmt.Errorf("kubelet client CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", "", fmt.Errorf("kubelet client CA: %w", err)
	}
	cp.KubeletClientCAFile = filepath.Join(dir, "kubelet-client-ca.crt")
	if err := writePEM(cp.KubeletClientCAFile, "CERTIFICATE", caDER, 0o644); err != nil {
		return "", "", err
	}

	keyFile = filepath.Join(dir, "kubelet-client.key")
	key, err := newKey(keyFile)
	if err != nil {
		return "", "", err
	}
	der, err := signCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: KubeletClientUser},
		NotBefore:   now.Add(-time.Minute),
		NotAfter:    now.Add(certLifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", fmt.Errorf("kubelet client certificate: %w", err)
	}
	certFile = filepath.Join(dir, "kubelet-client.crt")
	if err := writePEM(certFile, "CERTIFICATE", der, 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// signCert signs tmpl (given a random serial number) with parent's key.
func signCert(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, parentKey *ecdsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	tmpl.SerialNumber = serial
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
}
