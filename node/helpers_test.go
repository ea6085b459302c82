package node_test

import (
	"fmt"

	"github.com/ethereum/go-ethereum/common"
)

func commonHash(s fmt.Stringer) common.Hash { return common.HexToHash(s.String()) }
