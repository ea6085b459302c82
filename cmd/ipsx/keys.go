package main

import (
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
	"github.com/ipsx/ipsx/network"
	"github.com/ipsx/ipsx/node"
	"github.com/spf13/cobra"
)

// readPassword reads a passphrase from file, else from the environment
// variable env.
func (a *app) readPassword(file, env, flag string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read password file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if p := a.getenv(env); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("no passphrase: give %s or set %s", flag, env)
}

// localKey is a key a command signs with itself, without a node: a geth
// keystore file, or a data dir's key.
type localKey struct {
	path         string
	passwordFile string
}

func (k *localKey) flags(cmd *cobra.Command, usage string) {
	cmd.Flags().StringVar(&k.path, "keystore", "", usage)
	cmd.Flags().StringVar(&k.passwordFile, "keystore-password-file", "", "file holding the keystore's passphrase (else IPSX_PASSWORD)")
}

// load decrypts the key at k.path (a keystore file, a keystore directory
// holding one file, or a data dir).
func (k *localKey) load(a *app) (*ecdsa.PrivateKey, error) {
	pw, err := a.readPassword(k.passwordFile, "IPSX_PASSWORD", "--keystore-password-file")
	if err != nil {
		return nil, err
	}
	return loadKey(k.path, pw)
}

func loadKey(path, password string) (*ecdsa.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if st.IsDir() {
		if node.HasKey(path) {
			return node.ReadKey(path, password)
		}
		files, _ := filepath.Glob(filepath.Join(path, "*"))
		if len(files) != 1 {
			return nil, fmt.Errorf("key: %s is neither a data dir nor a keystore directory with one key file (%d files)", path, len(files))
		}
		path = files[0]
	}
	blob, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	kk, err := keystore.DecryptKey(blob, password)
	if errors.Is(err, keystore.ErrDecrypt) {
		return nil, fmt.Errorf("key %s: %w", path, node.ErrBadPassword)
	}
	if err != nil {
		return nil, fmt.Errorf("key %s: not a keystore file: %w", path, err)
	}
	return kk.PrivateKey, nil
}

func loadNetwork(path string) (*network.File, error) {
	return network.Load(path)
}

func keyCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Import a key into a data dir, or export the data dir's key",
		Long: `key moves the node key (at once the Ethereum wallet and the libp2p
identity) in and out of a data dir, in go-ethereum's keystore format, which
geth, Clef, MetaMask and most Ethereum wallets read and write. Neither
command replaces a key or a file that exists.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(keyImportCommand(a), keyExportCommand(a))
	return cmd
}

func keyImportCommand(a *app) *cobra.Command {
	var (
		f       nodeFlags
		keyPass string
	)
	cmd := &cobra.Command{
		Use:   "import [FILE|-]",
		Short: "Create a data dir around an existing key: a keystore file, or a hex private key on stdin",
		Long: `key import is init with a key of your own: FILE is a geth keystore file
(decrypted with --key-password-file, else with the data dir's passphrase),
or "-" (the default) reads standard input, which holds either a keystore
file or a hex private key (64 hex digits, 0x optional). The key is written
to the data dir's keystore encrypted with the passphrase of --password-file
or IPSX_PASSWORD, with config.json and api.token, as init writes them; the
flags are init's. A data dir that has a key is refused.`,
		Example: `  echo "$PRIVATE_KEY" | ipsx key import --datadir ~/.ipsx
  ipsx key import ~/.ethereum/keystore/UTC--2024-...--5fbdb231... --datadir ~/.ipsx`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := f.password(a)
			if err != nil {
				return err
			}
			if node.HasKey(a.datadir) {
				return fmt.Errorf("%s already has a key; not replaced", a.datadir)
			}
			src := "-"
			if len(args) == 1 {
				src = args[0]
			}
			var blob []byte
			if src == "-" {
				blob, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<10))
			} else {
				blob, err = os.ReadFile(src)
			}
			if err != nil {
				return fmt.Errorf("read key: %w", err)
			}
			key, err := parseKey(blob, func() (string, error) {
				if keyPass == "" {
					return pw, nil
				}
				return a.readPassword(keyPass, "IPSX_PASSWORD", "--key-password-file")
			})
			if err != nil {
				return err
			}
			cfg := f.cfg
			cfg.API = a.api
			addr, err := node.InitKey(a.datadir, pw, cfg, key)
			if err != nil {
				return err
			}
			pid, err := node.PeerIDOf(key)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), map[string]string{"datadir": a.datadir, "address": addr.Hex(), "peerId": pid.String()})
			}
			return writeString(cmd.OutOrStdout(), fmt.Sprintf("imported %s into %s\npeer id: %s\n", addr.Hex(), a.datadir, pid))
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&keyPass, "key-password-file", "", "file holding the imported keystore file's passphrase (default: the data dir's)")
	return cmd
}

// parseKey reads a keystore file (JSON) or a hex private key.
func parseKey(blob []byte, keystorePassword func() (string, error)) (*ecdsa.PrivateKey, error) {
	s := strings.TrimSpace(string(blob))
	if strings.HasPrefix(s, "{") {
		pw, err := keystorePassword()
		if err != nil {
			return nil, err
		}
		k, err := keystore.DecryptKey([]byte(s), pw)
		if errors.Is(err, keystore.ErrDecrypt) {
			return nil, fmt.Errorf("keystore file: %w (give its passphrase with --key-password-file)", node.ErrBadPassword)
		}
		if err != nil {
			return nil, fmt.Errorf("keystore file: %w", err)
		}
		return k.PrivateKey, nil
	}
	h := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(h) != 64 {
		return nil, errors.New("key: want a keystore file or a hex private key of 64 hex digits")
	}
	raw, err := hex.DecodeString(h)
	if err != nil {
		return nil, errors.New("key: want a keystore file or a hex private key of 64 hex digits")
	}
	k, err := ethcrypto.ToECDSA(raw)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	return k, nil
}

func keyExportCommand(a *app) *cobra.Command {
	var out, passFile, newPass string
	cmd := &cobra.Command{
		Use:   "export --out FILE",
		Short: "Write the data dir's key to a keystore file",
		Long: `key export decrypts the data dir's key (passphrase from --password-file or
IPSX_PASSWORD) and writes it to --out as a geth keystore file (version 3,
standard scrypt), encrypted with --new-password-file or else the same
passphrase. An existing file is not replaced.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := a.readPassword(passFile, "IPSX_PASSWORD", "--password-file")
			if err != nil {
				return err
			}
			key, err := node.ReadKey(a.datadir, pw)
			if err != nil {
				return err
			}
			if newPass != "" {
				if pw, err = a.readPassword(newPass, "IPSX_NEW_PASSWORD", "--new-password-file"); err != nil {
					return err
				}
			}
			id, err := uuid.NewRandom()
			if err != nil {
				return err
			}
			addr := ethcrypto.PubkeyToAddress(key.PublicKey)
			blob, err := keystore.EncryptKey(&keystore.Key{Id: id, Address: addr, PrivateKey: key}, pw, keystore.StandardScryptN, keystore.StandardScryptP)
			if err != nil {
				return fmt.Errorf("encrypt key: %w", err)
			}
			w, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s exists; not replaced", out)
			}
			if err != nil {
				return err
			}
			if _, err := w.Write(blob); err != nil {
				w.Close()
				return err
			}
			if err := w.Close(); err != nil {
				return err
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), map[string]string{"address": addr.Hex(), "file": out})
			}
			return writeString(cmd.OutOrStdout(), fmt.Sprintf("exported %s to %s\n", addr.Hex(), out))
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "keystore file to write (required)")
	cmd.Flags().StringVar(&passFile, "password-file", "", "file holding the data dir's passphrase (else IPSX_PASSWORD)")
	cmd.Flags().StringVar(&newPass, "new-password-file", "", "file holding the exported file's passphrase (default: the data dir's)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
