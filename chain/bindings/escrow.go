// Code generated via abigen V2 - DO NOT EDIT.
// This file is a generated binding and any manual changes will be lost.

package bindings

import (
	"bytes"
	"errors"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Reference imports to suppress errors if they are not otherwise used.
var (
	_ = bytes.Equal
	_ = errors.New
	_ = big.NewInt
	_ = common.Big1
	_ = types.BloomLookup
	_ = abi.ConvertType
)

// EscrowDeal is an auto generated low-level Go binding around an user-defined struct.
type EscrowDeal struct {
	OfferId        [32]byte
	RequestId      [32]byte
	Provider       common.Address
	Requester      common.Address
	Ips            uint32
	PricePerIpHour *big.Int
	PricePerGB     *big.Int
	MaxAmount      *big.Int
	Start          uint64
	Deadline       uint64
	Nonce          uint64
}

// EscrowVoucher is an auto generated low-level Go binding around an user-defined struct.
type EscrowVoucher struct {
	DealId      [32]byte
	Amount      *big.Int
	ByteCount   uint64
	ConnLogHash [32]byte
}

// EscrowMetaData contains all meta data concerning the Escrow contract.
var EscrowMetaData = bind.MetaData{
	ABI: "[{\"inputs\":[{\"internalType\":\"contractIERC20Minimal\",\"name\":\"token_\",\"type\":\"address\"},{\"internalType\":\"address\",\"name\":\"treasury_\",\"type\":\"address\"},{\"internalType\":\"uint16\",\"name\":\"commissionBps_\",\"type\":\"uint16\"},{\"internalType\":\"uint64\",\"name\":\"graceSeconds_\",\"type\":\"uint64\"}],\"stateMutability\":\"nonpayable\",\"type\":\"constructor\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"maxAmount\",\"type\":\"uint256\"}],\"name\":\"AmountAboveLocked\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"}],\"name\":\"AmountTooLarge\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"BadSignature\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"bytes32\",\"name\":\"dealId\",\"type\":\"bytes32\"}],\"name\":\"DealExists\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"bytes32\",\"name\":\"dealId\",\"type\":\"bytes32\"},{\"internalType\":\"uint8\",\"name\":\"status\",\"type\":\"uint8\"}],\"name\":\"DealNotOpen\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"account\",\"type\":\"address\"},{\"internalType\":\"uint256\",\"name\":\"balance\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"needed\",\"type\":\"uint256\"}],\"name\":\"InsufficientBalance\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"InvalidConfig\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"InvalidTerms\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"caller\",\"type\":\"address\"}],\"name\":\"NotProvider\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"bytes32\",\"name\":\"dealId\",\"type\":\"bytes32\"},{\"internalType\":\"uint256\",\"name\":\"availableAt\",\"type\":\"uint256\"}],\"name\":\"RefundTooEarly\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"TransferFailed\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"bytes32\",\"name\":\"voucherDealId\",\"type\":\"bytes32\"},{\"internalType\":\"bytes32\",\"name\":\"dealId\",\"type\":\"bytes32\"}],\"name\":\"VoucherDealMismatch\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"expected\",\"type\":\"address\"},{\"internalType\":\"address\",\"name\":\"recovered\",\"type\":\"address\"}],\"name\":\"WrongSigner\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"ZeroAmount\",\"type\":\"error\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"bytes32\",\"name\":\"dealId\",\"type\":\"bytes32\"}],\"name\":\"Cancelled\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"address\",\"name\":\"account\",\"type\":\"address\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"}],\"name\":\"Deposited\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"bytes32\",\"name\":\"dealId\",\"type\":\"bytes32\"},{\"indexed\":true,\"internalType\":\"address\",\"name\":\"provider\",\"type\":\"address\"},{\"indexed\":true,\"internalType\":\"address\",\"name\":\"requester\",\"type\":\"address\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"maxAmount\",\"type\":\"uint256\"},{\"indexed\":false,\"internalType\":\"uint64\",\"name\":\"deadline\",\"type\":\"uint64\"}],\"name\":\"Opened\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"bytes32\",\"name\":\"dealId\",\"type\":\"bytes32\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"}],\"name\":\"Refunded\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"bytes32\",\"name\":\"dealId\",\"type\":\"bytes32\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"commission\",\"type\":\"uint256\"},{\"indexed\":false,\"internalType\":\"uint64\",\"name\":\"byteCount\",\"type\":\"uint64\"},{\"indexed\":false,\"internalType\":\"bytes32\",\"name\":\"connLogHash\",\"type\":\"bytes32\"}],\"name\":\"Settled\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"address\",\"name\":\"account\",\"type\":\"address\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"}],\"name\":\"Withdrawn\",\"type\":\"event\"},{\"inputs\":[],\"name\":\"CANCEL_TYPEHASH\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"DEAL_TYPEHASH\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"MAX_COMMISSION_BPS\",\"outputs\":[{\"internalType\":\"uint16\",\"name\":\"\",\"type\":\"uint16\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"STATUS_CANCELLED\",\"outputs\":[{\"internalType\":\"uint8\",\"name\":\"\",\"type\":\"uint8\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"STATUS_NONE\",\"outputs\":[{\"internalType\":\"uint8\",\"name\":\"\",\"type\":\"uint8\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"STATUS_OPEN\",\"outputs\":[{\"internalType\":\"uint8\",\"name\":\"\",\"type\":\"uint8\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"STATUS_REFUNDED\",\"outputs\":[{\"internalType\":\"uint8\",\"name\":\"\",\"type\":\"uint8\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"STATUS_SETTLED\",\"outputs\":[{\"internalType\":\"uint8\",\"name\":\"\",\"type\":\"uint8\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"VOUCHER_TYPEHASH\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"\",\"type\":\"address\"}],\"name\":\"accounts\",\"outputs\":[{\"internalType\":\"uint128\",\"name\":\"balance\",\"type\":\"uint128\"},{\"internalType\":\"uint128\",\"name\":\"reserved\",\"type\":\"uint128\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"components\":[{\"internalType\":\"bytes32\",\"name\":\"offerId\",\"type\":\"bytes32\"},{\"internalType\":\"bytes32\",\"name\":\"requestId\",\"type\":\"bytes32\"},{\"internalType\":\"address\",\"name\":\"provider\",\"type\":\"address\"},{\"internalType\":\"address\",\"name\":\"requester\",\"type\":\"address\"},{\"internalType\":\"uint32\",\"name\":\"ips\",\"type\":\"uint32\"},{\"internalType\":\"uint256\",\"name\":\"pricePerIpHour\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"pricePerGB\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"maxAmount\",\"type\":\"uint256\"},{\"internalType\":\"uint64\",\"name\":\"start\",\"type\":\"uint64\"},{\"internalType\":\"uint64\",\"name\":\"deadline\",\"type\":\"uint64\"},{\"internalType\":\"uint64\",\"name\":\"nonce\",\"type\":\"uint64\"}],\"internalType\":\"structEscrow.Deal\",\"name\":\"d\",\"type\":\"tuple\"},{\"internalType\":\"bytes\",\"name\":\"providerSig\",\"type\":\"bytes\"},{\"internalType\":\"bytes\",\"name\":\"requesterSig\",\"type\":\"bytes\"}],\"name\":\"cancel\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"bytes32\",\"name\":\"id\",\"type\":\"bytes32\"}],\"name\":\"cancelDigest\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"commissionBps\",\"outputs\":[{\"internalType\":\"uint16\",\"name\":\"\",\"type\":\"uint16\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"components\":[{\"internalType\":\"bytes32\",\"name\":\"offerId\",\"type\":\"bytes32\"},{\"internalType\":\"bytes32\",\"name\":\"requestId\",\"type\":\"bytes32\"},{\"internalType\":\"address\",\"name\":\"provider\",\"type\":\"address\"},{\"internalType\":\"address\",\"name\":\"requester\",\"type\":\"address\"},{\"internalType\":\"uint32\",\"name\":\"ips\",\"type\":\"uint32\"},{\"internalType\":\"uint256\",\"name\":\"pricePerIpHour\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"pricePerGB\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"maxAmount\",\"type\":\"uint256\"},{\"internalType\":\"uint64\",\"name\":\"start\",\"type\":\"uint64\"},{\"internalType\":\"uint64\",\"name\":\"deadline\",\"type\":\"uint64\"},{\"internalType\":\"uint64\",\"name\":\"nonce\",\"type\":\"uint64\"}],\"internalType\":\"structEscrow.Deal\",\"name\":\"d\",\"type\":\"tuple\"}],\"name\":\"dealId\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"name\":\"dealStatus\",\"outputs\":[{\"internalType\":\"uint8\",\"name\":\"\",\"type\":\"uint8\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"}],\"name\":\"deposit\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"domainSeparator\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"graceSeconds\",\"outputs\":[{\"internalType\":\"uint64\",\"name\":\"\",\"type\":\"uint64\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"components\":[{\"internalType\":\"bytes32\",\"name\":\"offerId\",\"type\":\"bytes32\"},{\"internalType\":\"bytes32\",\"name\":\"requestId\",\"type\":\"bytes32\"},{\"internalType\":\"address\",\"name\":\"provider\",\"type\":\"address\"},{\"internalType\":\"address\",\"name\":\"requester\",\"type\":\"address\"},{\"internalType\":\"uint32\",\"name\":\"ips\",\"type\":\"uint32\"},{\"internalType\":\"uint256\",\"name\":\"pricePerIpHour\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"pricePerGB\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"maxAmount\",\"type\":\"uint256\"},{\"internalType\":\"uint64\",\"name\":\"start\",\"type\":\"uint64\"},{\"internalType\":\"uint64\",\"name\":\"deadline\",\"type\":\"uint64\"},{\"internalType\":\"uint64\",\"name\":\"nonce\",\"type\":\"uint64\"}],\"internalType\":\"structEscrow.Deal\",\"name\":\"d\",\"type\":\"tuple\"},{\"internalType\":\"bytes\",\"name\":\"providerSig\",\"type\":\"bytes\"},{\"internalType\":\"bytes\",\"name\":\"requesterSig\",\"type\":\"bytes\"}],\"name\":\"open\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"id\",\"type\":\"bytes32\"}],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[{\"components\":[{\"internalType\":\"bytes32\",\"name\":\"offerId\",\"type\":\"bytes32\"},{\"internalType\":\"bytes32\",\"name\":\"requestId\",\"type\":\"bytes32\"},{\"internalType\":\"address\",\"name\":\"provider\",\"type\":\"address\"},{\"internalType\":\"address\",\"name\":\"requester\",\"type\":\"address\"},{\"internalType\":\"uint32\",\"name\":\"ips\",\"type\":\"uint32\"},{\"internalType\":\"uint256\",\"name\":\"pricePerIpHour\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"pricePerGB\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"maxAmount\",\"type\":\"uint256\"},{\"internalType\":\"uint64\",\"name\":\"start\",\"type\":\"uint64\"},{\"internalType\":\"uint64\",\"name\":\"deadline\",\"type\":\"uint64\"},{\"internalType\":\"uint64\",\"name\":\"nonce\",\"type\":\"uint64\"}],\"internalType\":\"structEscrow.Deal\",\"name\":\"d\",\"type\":\"tuple\"}],\"name\":\"refund\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[{\"components\":[{\"internalType\":\"bytes32\",\"name\":\"offerId\",\"type\":\"bytes32\"},{\"internalType\":\"bytes32\",\"name\":\"requestId\",\"type\":\"bytes32\"},{\"internalType\":\"address\",\"name\":\"provider\",\"type\":\"address\"},{\"internalType\":\"address\",\"name\":\"requester\",\"type\":\"address\"},{\"internalType\":\"uint32\",\"name\":\"ips\",\"type\":\"uint32\"},{\"internalType\":\"uint256\",\"name\":\"pricePerIpHour\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"pricePerGB\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"maxAmount\",\"type\":\"uint256\"},{\"internalType\":\"uint64\",\"name\":\"start\",\"type\":\"uint64\"},{\"internalType\":\"uint64\",\"name\":\"deadline\",\"type\":\"uint64\"},{\"internalType\":\"uint64\",\"name\":\"nonce\",\"type\":\"uint64\"}],\"internalType\":\"structEscrow.Deal\",\"name\":\"d\",\"type\":\"tuple\"},{\"components\":[{\"internalType\":\"bytes32\",\"name\":\"dealId\",\"type\":\"bytes32\"},{\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"},{\"internalType\":\"uint64\",\"name\":\"byteCount\",\"type\":\"uint64\"},{\"internalType\":\"bytes32\",\"name\":\"connLogHash\",\"type\":\"bytes32\"}],\"internalType\":\"structEscrow.Voucher\",\"name\":\"v\",\"type\":\"tuple\"},{\"internalType\":\"bytes\",\"name\":\"requesterSig\",\"type\":\"bytes\"}],\"name\":\"settle\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"token\",\"outputs\":[{\"internalType\":\"contractIERC20Minimal\",\"name\":\"\",\"type\":\"address\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"treasury\",\"outputs\":[{\"internalType\":\"address\",\"name\":\"\",\"type\":\"address\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"components\":[{\"internalType\":\"bytes32\",\"name\":\"dealId\",\"type\":\"bytes32\"},{\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"},{\"internalType\":\"uint64\",\"name\":\"byteCount\",\"type\":\"uint64\"},{\"internalType\":\"bytes32\",\"name\":\"connLogHash\",\"type\":\"bytes32\"}],\"internalType\":\"structEscrow.Voucher\",\"name\":\"v\",\"type\":\"tuple\"}],\"name\":\"voucherDigest\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"}],\"name\":\"withdraw\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"}]",
	ID:  "Escrow",
	Bin: "0x610140604052348015610010575f5ffd5b50604051611f36380380611f3683398101604081905261002f91610173565b6001600160a01b038416158061004c57506001600160a01b038316155b8061005c57506101f461ffff8316115b1561007a576040516306b7c75960e31b815260040160405180910390fd5b6001600160a01b03808516608052831660a05261ffff821660c0526001600160401b03811660e052466101005261014e604080517f8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f60208201527fac90bd7a4ac85588cc029f68e12de49e9c76837182bd775110d9a7b12459fbe7918101919091527fc89efdaa54c0f20c7adf612882df0950f5a951637e0307cdcb4c672f298b8bc660608201524660808201523060a08201525f9060c00160405160208183030381529060405280519060200120905090565b61012052506101e092505050565b6001600160a01b0381168114610170575f5ffd5b50565b5f5f5f5f60808587031215610186575f5ffd5b84516101918161015c565b60208601519094506101a28161015c565b604086015190935061ffff811681146101b9575f5ffd5b60608601519092506001600160401b03811681146101d5575f5ffd5b939692955090935050565b60805160a05160c05160e0516101005161012051611cec61024a5f395f61149701525f6113c301525f818161042b015261075601525f81816103f10152610b3d01525f81816102d60152610cc101525f818161047c015281816106460152610e750152611cec5ff3fe608060405234801561000f575f5ffd5b506004361061019a575f3560e01c806373fca6ea116100e8578063b6b55f2511610093578063e052b5441161006e578063e052b54414610426578063e62977f814610466578063f698da251461046f578063fc0c546a14610477575f5ffd5b8063b6b55f25146103c6578063c7557992146103d9578063d6b45038146103ec575f5ffd5b80639963b4de116100c35780639963b4de1461039857806399985f2e146103a05780639e2dc573146103b3575f5ffd5b806373fca6ea1461034357806384e1433b1461036a57806394739e8714610371575f5ffd5b80635ab30cbe1161014857806361d027b31161012357806361d027b3146102d157806367cd9f7e1461031d57806371abb66214610330575f5ffd5b80635ab30cbe146102445780635c997915146102575780635e5c06e21461025f575f5ffd5b80632e1a7d4d116101785780632e1a7d4d1461020057806335cdaa9a146102155780635a4e5a151461023c575f5ffd5b806305176fbc1461019e57806324f8515b146101c457806326443285146101de575b5f5ffd5b6101b16101ac36600461188a565b61049e565b6040519081526020015b60405180910390f35b6101cc600181565b60405160ff90911681526020016101bb565b6101cc6101ec3660046118ac565b60016020525f908152604090205460ff1681565b61021361020e3660046118ac565b6104f6565b005b6101b17f403151eaa8c3aa9a686fe817198a31dba892fe0aea15bba2aa4203598b58df3881565b6101cc600481565b6101b16102523660046118ac565b610700565b6101cc600281565b6102a861026d3660046118eb565b5f602081905290815260409020546fffffffffffffffffffffffffffffffff8082169170010000000000000000000000000000000090041682565b604080516fffffffffffffffffffffffffffffffff9384168152929091166020830152016101bb565b6102f87f000000000000000000000000000000000000000000000000000000000000000081565b60405173ffffffffffffffffffffffffffffffffffffffff90911681526020016101bb565b61021361032b36600461188a565b61073e565b6101b161033e366004611914565b610864565b6101b17f0affdf663f89f6e45d2772423093a4c935642946027e02263206502026046f9181565b6101cc5f81565b6101b17f3893768a9b191dfbc5d1663c97ffb471b662f82e2b700c6e2d290094093d082381565b6101cc600381565b6102136103ae366004611973565b61089b565b6102136103c13660046119f7565b61098c565b6102136103d43660046118ac565b610db4565b6101b16103e7366004611973565b610fe3565b6104137f000000000000000000000000000000000000000000000000000000000000000081565b60405161ffff90911681526020016101bb565b61044d7f000000000000000000000000000000000000000000000000000000000000000081565b60405167ffffffffffffffff90911681526020016101bb565b6104136101f481565b6101b16113c0565b6102f87f000000000000000000000000000000000000000000000000000000000000000081565b5f6104f07f403151eaa8c3aa9a686fe817198a31dba892fe0aea15bba2aa4203598b58df38836040516020016104d5929190611a83565b604051602081830303815290604052805190602001206114b9565b92915050565b805f0361052f576040517f1f2a200500000000000000000000000000000000000000000000000000000000815260040160405180910390fd5b335f90815260208190526040902080546fffffffffffffffffffffffffffffffff16808311156105a0576040517fdb42144d00000000000000000000000000000000000000000000000000000000815233600482015260248101829052604481018490526064015b60405180910390fd5b81547fffffffffffffffffffffffffffffffff00000000000000000000000000000000168382036fffffffffffffffffffffffffffffffff1617825560405183815233907f7084f5476618d8e60b11ef0d7d3f06914655adb8793e28ff7f018d4c76d505d59060200160405180910390a26040517fa9059cbb000000000000000000000000000000000000000000000000000000008152336004820152602481018490527f000000000000000000000000000000000000000000000000000000000000000073ffffffffffffffffffffffffffffffffffffffff169063a9059cbb906044016020604051808303815f875af11580156106a1573d5f5f3e3d5ffd5b505050506040513d601f19601f820116820180604052508101906106c59190611b96565b6106fb576040517f90b8ec1800000000000000000000000000000000000000000000000000000000815260040160405180910390fd5b505050565b604080517f0affdf663f89f6e45d2772423093a4c935642946027e02263206502026046f9160208201529081018290525f906104f0906060016104d5565b5f61074882611502565b90505f67ffffffffffffffff7f00000000000000000000000000000000000000000000000000000000000000001661078861014085016101208601611bb5565b67ffffffffffffffff1661079c9190611bfb565b9050804210156107e2576040517f2d1d8e9f0000000000000000000000000000000000000000000000000000000081526004810183905260248101829052604401610597565b5f82815260016020526040902080547fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff001660031790556108218361159d565b817f1535ab411323bb41ad642ccf14068bbd78818ed38dd9b4421c927cc6eeb07e2d8460e0013560405161085791815260200190565b60405180910390a2505050565b5f6104f07f3893768a9b191dfbc5d1663c97ffb471b662f82e2b700c6e2d290094093d0823836040516020016104d5929190611c0e565b5f6108a586611502565b90505f6108e77f0affdf663f89f6e45d2772423093a4c935642946027e02263206502026046f91836040516020016104d5929190918252602082015260400190565b90506109048187876108ff60608c0160408d016118eb565b61164a565b61091a8185856108ff60808c0160608d016118eb565b5f82815260016020526040902080547fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff001660041790556109598761159d565b60405182907fbaa1eb22f2a492ba1a5fea61b8df4d27c6c8b5f3971e63bb58fa14ff72eedb70905f90a250505050505050565b5f61099685611502565b90506109a860608601604087016118eb565b73ffffffffffffffffffffffffffffffffffffffff163373ffffffffffffffffffffffffffffffffffffffff1614610a0e576040517f1bd2224f000000000000000000000000000000000000000000000000000000008152336004820152602401610597565b83358114610a52576040517f214760e30000000000000000000000000000000000000000000000000000000081528435600482015260248101829052604401610597565b8460e0013584602001351115610aa4576040517f0d8dd7050000000000000000000000000000000000000000000000000000000081526020850135600482015260e08601356024820152604401610597565b610aef610add7f3893768a9b191dfbc5d1663c97ffb471b662f82e2b700c6e2d290094093d0823866040516020016104d5929190611c0e565b84846108ff60808a0160608b016118eb565b5f818152600160209081526040822080547fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff0016600217905560e0870135919086013590612710610b7561ffff7f0000000000000000000000000000000000000000000000000000000000000000166fffffffffffffffffffffffffffffffff8516611c5c565b610b7f9190611c73565b90505f8080610b9460808c0160608d016118eb565b73ffffffffffffffffffffffffffffffffffffffff168152602081019190915260409081015f90812080546fffffffffffffffffffffffffffffffff70010000000000000000000000000000000080830482168a900382160280821692821692909217888a0301167fffffffffffffffffffffffffffffffff00000000000000000000000000000000919091161781559250838503918190610c3c9060608e01908e016118eb565b73ffffffffffffffffffffffffffffffffffffffff16815260208101919091526040015f2080546fffffffffffffffffffffffffffffffff80821690930183167fffffffffffffffffffffffffffffffff00000000000000000000000000000000909116179055821615610d2f5773ffffffffffffffffffffffffffffffffffffffff7f0000000000000000000000000000000000000000000000000000000000000000165f90815260208190526040902080546fffffffffffffffffffffffffffffffff8082168501167fffffffffffffffffffffffffffffffff000000000000000000000000000000009091161790555b50837f3ec6f2638ebc4f4827dba254e7852426ce22100f5c39f086bbffe3c77aabd9dc8383610d6460608c0160408d01611bb5565b604080516fffffffffffffffffffffffffffffffff948516815293909216602084015267ffffffffffffffff16908201526060808b01359082015260800160405180910390a25050505050505050565b805f03610ded576040517f1f2a200500000000000000000000000000000000000000000000000000000000815260040160405180910390fd5b6fffffffffffffffffffffffffffffffff811115610e3a576040517f08083b2a00000000000000000000000000000000000000000000000000000000815260048101829052602401610597565b6040517f23b872dd000000000000000000000000000000000000000000000000000000008152336004820152306024820152604481018290527f000000000000000000000000000000000000000000000000000000000000000073ffffffffffffffffffffffffffffffffffffffff16906323b872dd906064016020604051808303815f875af1158015610ed0573d5f5f3e3d5ffd5b505050506040513d601f19601f82011682018060405250810190610ef49190611b96565b610f2a576040517f90b8ec1800000000000000000000000000000000000000000000000000000000815260040160405180910390fd5b335f9081526020819052604081208054839290610f5a9084906fffffffffffffffffffffffffffffffff16611cab565b92506101000a8154816fffffffffffffffffffffffffffffffff02191690836fffffffffffffffffffffffffffffffff1602179055503373ffffffffffffffffffffffffffffffffffffffff167f2da466a7b24304f47e87fa2e1e5a81b9831ce54fec19055ce277ca2f39ba42c482604051610fd891815260200190565b60405180910390a250565b5f42610ff761014088016101208901611bb5565b67ffffffffffffffff16111580611044575061101b61014087016101208801611bb5565b67ffffffffffffffff1661103761012088016101008901611bb5565b67ffffffffffffffff1610155b80611051575060e0860135155b15611088576040517f0256965f00000000000000000000000000000000000000000000000000000000815260040160405180910390fd5b6fffffffffffffffffffffffffffffffff60e087013511156110dc576040517f08083b2a00000000000000000000000000000000000000000000000000000000815260e08701356004820152602401610597565b6111127f403151eaa8c3aa9a686fe817198a31dba892fe0aea15bba2aa4203598b58df38876040516020016104d5929190611a83565b5f8181526001602052604090205490915060ff1615611160576040517fb3e2817b00000000000000000000000000000000000000000000000000000000815260048101829052602401610597565b6111768186866108ff60608b0160408c016118eb565b61118c8184846108ff60808b0160608c016118eb565b5f808061119f60808a0160608b016118eb565b73ffffffffffffffffffffffffffffffffffffffff16815260208101919091526040015f20805490915060e0880135906fffffffffffffffffffffffffffffffff908116908216811015611268576111fd60808a0160608b016118eb565b6040517fdb42144d00000000000000000000000000000000000000000000000000000000815273ffffffffffffffffffffffffffffffffffffffff90911660048201526fffffffffffffffffffffffffffffffff808316602483015283166044820152606401610597565b82547001000000000000000000000000000000006fffffffffffffffffffffffffffffffff84840381167fffffffffffffffffffffffffffffffff0000000000000000000000000000000090931683178290048116850116021783555f84815260016020819052604090912080547fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff0016909117905561130d60808a0160608b016118eb565b73ffffffffffffffffffffffffffffffffffffffff1661133360608b0160408c016118eb565b73ffffffffffffffffffffffffffffffffffffffff16857f89b1a37ddd2cb8c54b295ccc2be773b62bc6f9e3b941147407c28fa8d3602074858d6101200160208101906113809190611bb5565b604080516fffffffffffffffffffffffffffffffff909316835267ffffffffffffffff90911660208301520160405180910390a450505095945050505050565b5f7f000000000000000000000000000000000000000000000000000000000000000046146114945761148f604080517f8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f60208201527fac90bd7a4ac85588cc029f68e12de49e9c76837182bd775110d9a7b12459fbe7918101919091527fc89efdaa54c0f20c7adf612882df0950f5a951637e0307cdcb4c672f298b8bc660608201524660808201523060a08201525f9060c00160405160208183030381529060405280519060200120905090565b905090565b507f000000000000000000000000000000000000000000000000000000000000000090565b5f5f6114c36113c0565b6040517f190100000000000000000000000000000000000000000000000000000000000081526002810191909152602281019390935250506042902090565b5f6115397f403151eaa8c3aa9a686fe817198a31dba892fe0aea15bba2aa4203598b58df38836040516020016104d5929190611a83565b5f8181526001602081905260409091205491925060ff909116908114611597576040517fc75cc8e10000000000000000000000000000000000000000000000000000000081526004810183905260ff82166024820152604401610597565b50919050565b60e08101355f80806115b560808601606087016118eb565b73ffffffffffffffffffffffffffffffffffffffff16815260208101919091526040015f2080546fffffffffffffffffffffffffffffffff7001000000000000000000000000000000008083048216869003821602808216928216929092179094019093167fffffffffffffffffffffffffffffffff0000000000000000000000000000000093909316929092179091555050565b60418214611684576040517f5cd5d23300000000000000000000000000000000000000000000000000000000815260040160405180910390fd5b8235602084013560408501355f1a601b8110156116a9576116a6601b82611cd3565b90505b7f7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a08211806116ea57508060ff16601b141580156116ea57508060ff16601c14155b15611721576040517f5cd5d23300000000000000000000000000000000000000000000000000000000815260040160405180910390fd5b604080515f808252602082018084528a905260ff841692820192909252606081018590526080810184905260019060a0016020604051602081039080840390855afa158015611772573d5f5f3e3d5ffd5b50506040517fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe0015191505073ffffffffffffffffffffffffffffffffffffffff81166117ea576040517f5cd5d23300000000000000000000000000000000000000000000000000000000815260040160405180910390fd5b8473ffffffffffffffffffffffffffffffffffffffff168173ffffffffffffffffffffffffffffffffffffffff161461186f576040517f366d29f700000000000000000000000000000000000000000000000000000000815273ffffffffffffffffffffffffffffffffffffffff808716600483015282166024820152604401610597565b5050505050505050565b5f6101608284031215611597575f5ffd5b5f610160828403121561189b575f5ffd5b6118a58383611879565b9392505050565b5f602082840312156118bc575f5ffd5b5035919050565b803573ffffffffffffffffffffffffffffffffffffffff811681146118e6575f5ffd5b919050565b5f602082840312156118fb575f5ffd5b6118a5826118c3565b5f60808284031215611597575f5ffd5b5f60808284031215611924575f5ffd5b6118a58383611904565b5f5f83601f84011261193e575f5ffd5b50813567ffffffffffffffff811115611955575f5ffd5b60208301915083602082850101111561196c575f5ffd5b9250929050565b5f5f5f5f5f6101a08688031215611988575f5ffd5b6119928787611879565b945061016086013567ffffffffffffffff8111156119ae575f5ffd5b6119ba8882890161192e565b90955093505061018086013567ffffffffffffffff8111156119da575f5ffd5b6119e68882890161192e565b969995985093965092949392505050565b5f5f5f5f6102008587031215611a0b575f5ffd5b611a158686611879565b9350611a25866101608701611904565b92506101e085013567ffffffffffffffff811115611a41575f5ffd5b611a4d8782880161192e565b95989497509550505050565b803563ffffffff811681146118e6575f5ffd5b803567ffffffffffffffff811681146118e6575f5ffd5b8281528135602080830191909152820135604080830191909152610180820190611aae9084016118c3565b73ffffffffffffffffffffffffffffffffffffffff8116606084015250611ad7606084016118c3565b73ffffffffffffffffffffffffffffffffffffffff8116608084015250611b0060808401611a59565b63ffffffff811660a08401525060a083013560c08381019190915283013560e08084019190915283013561010080840191909152611b3f908401611a6c565b67ffffffffffffffff811661012084015250611b5e6101208401611a6c565b67ffffffffffffffff811661014084015250611b7d6101408401611a6c565b67ffffffffffffffff8116610160840152509392505050565b5f60208284031215611ba6575f5ffd5b815180151581146118a5575f5ffd5b5f60208284031215611bc5575f5ffd5b6118a582611a6c565b7f4e487b71000000000000000000000000000000000000000000000000000000005f52601160045260245ffd5b808201808211156104f0576104f0611bce565b828152813560208083019190915282013560408083019190915260a082019067ffffffffffffffff90611c42908501611a6c565b166060838101919091529290920135608090910152919050565b80820281158282048414176104f0576104f0611bce565b5f82611ca6577f4e487b71000000000000000000000000000000000000000000000000000000005f52601260045260245ffd5b500490565b6fffffffffffffffffffffffffffffffff81811683821601908111156104f0576104f0611bce565b60ff81811683821601908111156104f0576104f0611bce56",
}

// Escrow is an auto generated Go binding around an Ethereum contract.
type Escrow struct {
	abi abi.ABI
}

// GetABI returns the ABI associated with this contract binding.
func (c *Escrow) GetABI() abi.ABI {
	return c.abi
}

// NewEscrow creates a new instance of Escrow.
func NewEscrow() *Escrow {
	parsed, err := EscrowMetaData.ParseABI()
	if err != nil {
		panic(errors.New("invalid ABI: " + err.Error()))
	}
	return &Escrow{abi: *parsed}
}

// Instance creates a wrapper for a deployed contract instance at the given address.
// Use this to create the instance object passed to abigen v2 library functions Call, Transact, etc.
func (c *Escrow) Instance(backend bind.ContractBackend, addr common.Address) *bind.BoundContract {
	return bind.NewBoundContract(addr, c.abi, backend, backend, backend)
}

// PackConstructor is the Go binding used to pack the parameters required for
// contract deployment.
//
// Solidity: constructor(address token_, address treasury_, uint16 commissionBps_, uint64 graceSeconds_) returns()
func (escrow *Escrow) PackConstructor(token_ common.Address, treasury_ common.Address, commissionBps_ uint16, graceSeconds_ uint64) []byte {
	enc, err := escrow.abi.Pack("", token_, treasury_, commissionBps_, graceSeconds_)
	if err != nil {
		panic(err)
	}
	return enc
}

// PackCANCELTYPEHASH is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x73fca6ea.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function CANCEL_TYPEHASH() view returns(bytes32)
func (escrow *Escrow) PackCANCELTYPEHASH() []byte {
	enc, err := escrow.abi.Pack("CANCEL_TYPEHASH")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackCANCELTYPEHASH is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x73fca6ea.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function CANCEL_TYPEHASH() view returns(bytes32)
func (escrow *Escrow) TryPackCANCELTYPEHASH() ([]byte, error) {
	return escrow.abi.Pack("CANCEL_TYPEHASH")
}

// UnpackCANCELTYPEHASH is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x73fca6ea.
//
// Solidity: function CANCEL_TYPEHASH() view returns(bytes32)
func (escrow *Escrow) UnpackCANCELTYPEHASH(data []byte) ([32]byte, error) {
	out, err := escrow.abi.Unpack("CANCEL_TYPEHASH", data)
	if err != nil {
		return *new([32]byte), err
	}
	out0 := *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)
	return out0, nil
}

// PackDEALTYPEHASH is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x35cdaa9a.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function DEAL_TYPEHASH() view returns(bytes32)
func (escrow *Escrow) PackDEALTYPEHASH() []byte {
	enc, err := escrow.abi.Pack("DEAL_TYPEHASH")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackDEALTYPEHASH is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x35cdaa9a.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function DEAL_TYPEHASH() view returns(bytes32)
func (escrow *Escrow) TryPackDEALTYPEHASH() ([]byte, error) {
	return escrow.abi.Pack("DEAL_TYPEHASH")
}

// UnpackDEALTYPEHASH is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x35cdaa9a.
//
// Solidity: function DEAL_TYPEHASH() view returns(bytes32)
func (escrow *Escrow) UnpackDEALTYPEHASH(data []byte) ([32]byte, error) {
	out, err := escrow.abi.Unpack("DEAL_TYPEHASH", data)
	if err != nil {
		return *new([32]byte), err
	}
	out0 := *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)
	return out0, nil
}

// PackMAXCOMMISSIONBPS is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xe62977f8.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function MAX_COMMISSION_BPS() view returns(uint16)
func (escrow *Escrow) PackMAXCOMMISSIONBPS() []byte {
	enc, err := escrow.abi.Pack("MAX_COMMISSION_BPS")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackMAXCOMMISSIONBPS is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xe62977f8.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function MAX_COMMISSION_BPS() view returns(uint16)
func (escrow *Escrow) TryPackMAXCOMMISSIONBPS() ([]byte, error) {
	return escrow.abi.Pack("MAX_COMMISSION_BPS")
}

// UnpackMAXCOMMISSIONBPS is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0xe62977f8.
//
// Solidity: function MAX_COMMISSION_BPS() view returns(uint16)
func (escrow *Escrow) UnpackMAXCOMMISSIONBPS(data []byte) (uint16, error) {
	out, err := escrow.abi.Unpack("MAX_COMMISSION_BPS", data)
	if err != nil {
		return *new(uint16), err
	}
	out0 := *abi.ConvertType(out[0], new(uint16)).(*uint16)
	return out0, nil
}

// PackSTATUSCANCELLED is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x5a4e5a15.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function STATUS_CANCELLED() view returns(uint8)
func (escrow *Escrow) PackSTATUSCANCELLED() []byte {
	enc, err := escrow.abi.Pack("STATUS_CANCELLED")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackSTATUSCANCELLED is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x5a4e5a15.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function STATUS_CANCELLED() view returns(uint8)
func (escrow *Escrow) TryPackSTATUSCANCELLED() ([]byte, error) {
	return escrow.abi.Pack("STATUS_CANCELLED")
}

// UnpackSTATUSCANCELLED is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x5a4e5a15.
//
// Solidity: function STATUS_CANCELLED() view returns(uint8)
func (escrow *Escrow) UnpackSTATUSCANCELLED(data []byte) (uint8, error) {
	out, err := escrow.abi.Unpack("STATUS_CANCELLED", data)
	if err != nil {
		return *new(uint8), err
	}
	out0 := *abi.ConvertType(out[0], new(uint8)).(*uint8)
	return out0, nil
}

// PackSTATUSNONE is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x84e1433b.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function STATUS_NONE() view returns(uint8)
func (escrow *Escrow) PackSTATUSNONE() []byte {
	enc, err := escrow.abi.Pack("STATUS_NONE")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackSTATUSNONE is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x84e1433b.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function STATUS_NONE() view returns(uint8)
func (escrow *Escrow) TryPackSTATUSNONE() ([]byte, error) {
	return escrow.abi.Pack("STATUS_NONE")
}

// UnpackSTATUSNONE is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x84e1433b.
//
// Solidity: function STATUS_NONE() view returns(uint8)
func (escrow *Escrow) UnpackSTATUSNONE(data []byte) (uint8, error) {
	out, err := escrow.abi.Unpack("STATUS_NONE", data)
	if err != nil {
		return *new(uint8), err
	}
	out0 := *abi.ConvertType(out[0], new(uint8)).(*uint8)
	return out0, nil
}

// PackSTATUSOPEN is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x24f8515b.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function STATUS_OPEN() view returns(uint8)
func (escrow *Escrow) PackSTATUSOPEN() []byte {
	enc, err := escrow.abi.Pack("STATUS_OPEN")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackSTATUSOPEN is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x24f8515b.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function STATUS_OPEN() view returns(uint8)
func (escrow *Escrow) TryPackSTATUSOPEN() ([]byte, error) {
	return escrow.abi.Pack("STATUS_OPEN")
}

// UnpackSTATUSOPEN is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x24f8515b.
//
// Solidity: function STATUS_OPEN() view returns(uint8)
func (escrow *Escrow) UnpackSTATUSOPEN(data []byte) (uint8, error) {
	out, err := escrow.abi.Unpack("STATUS_OPEN", data)
	if err != nil {
		return *new(uint8), err
	}
	out0 := *abi.ConvertType(out[0], new(uint8)).(*uint8)
	return out0, nil
}

// PackSTATUSREFUNDED is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x9963b4de.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function STATUS_REFUNDED() view returns(uint8)
func (escrow *Escrow) PackSTATUSREFUNDED() []byte {
	enc, err := escrow.abi.Pack("STATUS_REFUNDED")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackSTATUSREFUNDED is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x9963b4de.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function STATUS_REFUNDED() view returns(uint8)
func (escrow *Escrow) TryPackSTATUSREFUNDED() ([]byte, error) {
	return escrow.abi.Pack("STATUS_REFUNDED")
}

// UnpackSTATUSREFUNDED is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x9963b4de.
//
// Solidity: function STATUS_REFUNDED() view returns(uint8)
func (escrow *Escrow) UnpackSTATUSREFUNDED(data []byte) (uint8, error) {
	out, err := escrow.abi.Unpack("STATUS_REFUNDED", data)
	if err != nil {
		return *new(uint8), err
	}
	out0 := *abi.ConvertType(out[0], new(uint8)).(*uint8)
	return out0, nil
}

// PackSTATUSSETTLED is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x5c997915.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function STATUS_SETTLED() view returns(uint8)
func (escrow *Escrow) PackSTATUSSETTLED() []byte {
	enc, err := escrow.abi.Pack("STATUS_SETTLED")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackSTATUSSETTLED is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x5c997915.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function STATUS_SETTLED() view returns(uint8)
func (escrow *Escrow) TryPackSTATUSSETTLED() ([]byte, error) {
	return escrow.abi.Pack("STATUS_SETTLED")
}

// UnpackSTATUSSETTLED is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x5c997915.
//
// Solidity: function STATUS_SETTLED() view returns(uint8)
func (escrow *Escrow) UnpackSTATUSSETTLED(data []byte) (uint8, error) {
	out, err := escrow.abi.Unpack("STATUS_SETTLED", data)
	if err != nil {
		return *new(uint8), err
	}
	out0 := *abi.ConvertType(out[0], new(uint8)).(*uint8)
	return out0, nil
}

// PackVOUCHERTYPEHASH is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x94739e87.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function VOUCHER_TYPEHASH() view returns(bytes32)
func (escrow *Escrow) PackVOUCHERTYPEHASH() []byte {
	enc, err := escrow.abi.Pack("VOUCHER_TYPEHASH")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackVOUCHERTYPEHASH is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x94739e87.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function VOUCHER_TYPEHASH() view returns(bytes32)
func (escrow *Escrow) TryPackVOUCHERTYPEHASH() ([]byte, error) {
	return escrow.abi.Pack("VOUCHER_TYPEHASH")
}

// UnpackVOUCHERTYPEHASH is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x94739e87.
//
// Solidity: function VOUCHER_TYPEHASH() view returns(bytes32)
func (escrow *Escrow) UnpackVOUCHERTYPEHASH(data []byte) ([32]byte, error) {
	out, err := escrow.abi.Unpack("VOUCHER_TYPEHASH", data)
	if err != nil {
		return *new([32]byte), err
	}
	out0 := *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)
	return out0, nil
}

// PackAccounts is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x5e5c06e2.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function accounts(address ) view returns(uint128 balance, uint128 reserved)
func (escrow *Escrow) PackAccounts(arg0 common.Address) []byte {
	enc, err := escrow.abi.Pack("accounts", arg0)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackAccounts is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x5e5c06e2.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function accounts(address ) view returns(uint128 balance, uint128 reserved)
func (escrow *Escrow) TryPackAccounts(arg0 common.Address) ([]byte, error) {
	return escrow.abi.Pack("accounts", arg0)
}

// AccountsOutput serves as a container for the return parameters of contract
// method Accounts.
type AccountsOutput struct {
	Balance  *big.Int
	Reserved *big.Int
}

// UnpackAccounts is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x5e5c06e2.
//
// Solidity: function accounts(address ) view returns(uint128 balance, uint128 reserved)
func (escrow *Escrow) UnpackAccounts(data []byte) (AccountsOutput, error) {
	out, err := escrow.abi.Unpack("accounts", data)
	outstruct := new(AccountsOutput)
	if err != nil {
		return *outstruct, err
	}
	outstruct.Balance = abi.ConvertType(out[0], new(big.Int)).(*big.Int)
	outstruct.Reserved = abi.ConvertType(out[1], new(big.Int)).(*big.Int)
	return *outstruct, nil
}

// PackCancel is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x99985f2e.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function cancel((bytes32,bytes32,address,address,uint32,uint256,uint256,uint256,uint64,uint64,uint64) d, bytes providerSig, bytes requesterSig) returns()
func (escrow *Escrow) PackCancel(d EscrowDeal, providerSig []byte, requesterSig []byte) []byte {
	enc, err := escrow.abi.Pack("cancel", d, providerSig, requesterSig)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackCancel is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x99985f2e.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function cancel((bytes32,bytes32,address,address,uint32,uint256,uint256,uint256,uint64,uint64,uint64) d, bytes providerSig, bytes requesterSig) returns()
func (escrow *Escrow) TryPackCancel(d EscrowDeal, providerSig []byte, requesterSig []byte) ([]byte, error) {
	return escrow.abi.Pack("cancel", d, providerSig, requesterSig)
}

// PackCancelDigest is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x5ab30cbe.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function cancelDigest(bytes32 id) view returns(bytes32)
func (escrow *Escrow) PackCancelDigest(id [32]byte) []byte {
	enc, err := escrow.abi.Pack("cancelDigest", id)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackCancelDigest is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x5ab30cbe.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function cancelDigest(bytes32 id) view returns(bytes32)
func (escrow *Escrow) TryPackCancelDigest(id [32]byte) ([]byte, error) {
	return escrow.abi.Pack("cancelDigest", id)
}

// UnpackCancelDigest is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x5ab30cbe.
//
// Solidity: function cancelDigest(bytes32 id) view returns(bytes32)
func (escrow *Escrow) UnpackCancelDigest(data []byte) ([32]byte, error) {
	out, err := escrow.abi.Unpack("cancelDigest", data)
	if err != nil {
		return *new([32]byte), err
	}
	out0 := *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)
	return out0, nil
}

// PackCommissionBps is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xd6b45038.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function commissionBps() view returns(uint16)
func (escrow *Escrow) PackCommissionBps() []byte {
	enc, err := escrow.abi.Pack("commissionBps")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackCommissionBps is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xd6b45038.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function commissionBps() view returns(uint16)
func (escrow *Escrow) TryPackCommissionBps() ([]byte, error) {
	return escrow.abi.Pack("commissionBps")
}

// UnpackCommissionBps is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0xd6b45038.
//
// Solidity: function commissionBps() view returns(uint16)
func (escrow *Escrow) UnpackCommissionBps(data []byte) (uint16, error) {
	out, err := escrow.abi.Unpack("commissionBps", data)
	if err != nil {
		return *new(uint16), err
	}
	out0 := *abi.ConvertType(out[0], new(uint16)).(*uint16)
	return out0, nil
}

// PackDealId is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x05176fbc.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function dealId((bytes32,bytes32,address,address,uint32,uint256,uint256,uint256,uint64,uint64,uint64) d) view returns(bytes32)
func (escrow *Escrow) PackDealId(d EscrowDeal) []byte {
	enc, err := escrow.abi.Pack("dealId", d)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackDealId is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x05176fbc.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function dealId((bytes32,bytes32,address,address,uint32,uint256,uint256,uint256,uint64,uint64,uint64) d) view returns(bytes32)
func (escrow *Escrow) TryPackDealId(d EscrowDeal) ([]byte, error) {
	return escrow.abi.Pack("dealId", d)
}

// UnpackDealId is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x05176fbc.
//
// Solidity: function dealId((bytes32,bytes32,address,address,uint32,uint256,uint256,uint256,uint64,uint64,uint64) d) view returns(bytes32)
func (escrow *Escrow) UnpackDealId(data []byte) ([32]byte, error) {
	out, err := escrow.abi.Unpack("dealId", data)
	if err != nil {
		return *new([32]byte), err
	}
	out0 := *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)
	return out0, nil
}

// PackDealStatus is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x26443285.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function dealStatus(bytes32 ) view returns(uint8)
func (escrow *Escrow) PackDealStatus(arg0 [32]byte) []byte {
	enc, err := escrow.abi.Pack("dealStatus", arg0)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackDealStatus is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x26443285.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function dealStatus(bytes32 ) view returns(uint8)
func (escrow *Escrow) TryPackDealStatus(arg0 [32]byte) ([]byte, error) {
	return escrow.abi.Pack("dealStatus", arg0)
}

// UnpackDealStatus is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x26443285.
//
// Solidity: function dealStatus(bytes32 ) view returns(uint8)
func (escrow *Escrow) UnpackDealStatus(data []byte) (uint8, error) {
	out, err := escrow.abi.Unpack("dealStatus", data)
	if err != nil {
		return *new(uint8), err
	}
	out0 := *abi.ConvertType(out[0], new(uint8)).(*uint8)
	return out0, nil
}

// PackDeposit is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xb6b55f25.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function deposit(uint256 amount) returns()
func (escrow *Escrow) PackDeposit(amount *big.Int) []byte {
	enc, err := escrow.abi.Pack("deposit", amount)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackDeposit is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xb6b55f25.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function deposit(uint256 amount) returns()
func (escrow *Escrow) TryPackDeposit(amount *big.Int) ([]byte, error) {
	return escrow.abi.Pack("deposit", amount)
}

// PackDomainSeparator is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xf698da25.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function domainSeparator() view returns(bytes32)
func (escrow *Escrow) PackDomainSeparator() []byte {
	enc, err := escrow.abi.Pack("domainSeparator")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackDomainSeparator is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xf698da25.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function domainSeparator() view returns(bytes32)
func (escrow *Escrow) TryPackDomainSeparator() ([]byte, error) {
	return escrow.abi.Pack("domainSeparator")
}

// UnpackDomainSeparator is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0xf698da25.
//
// Solidity: function domainSeparator() view returns(bytes32)
func (escrow *Escrow) UnpackDomainSeparator(data []byte) ([32]byte, error) {
	out, err := escrow.abi.Unpack("domainSeparator", data)
	if err != nil {
		return *new([32]byte), err
	}
	out0 := *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)
	return out0, nil
}

// PackGraceSeconds is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xe052b544.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function graceSeconds() view returns(uint64)
func (escrow *Escrow) PackGraceSeconds() []byte {
	enc, err := escrow.abi.Pack("graceSeconds")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackGraceSeconds is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xe052b544.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function graceSeconds() view returns(uint64)
func (escrow *Escrow) TryPackGraceSeconds() ([]byte, error) {
	return escrow.abi.Pack("graceSeconds")
}

// UnpackGraceSeconds is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0xe052b544.
//
// Solidity: function graceSeconds() view returns(uint64)
func (escrow *Escrow) UnpackGraceSeconds(data []byte) (uint64, error) {
	out, err := escrow.abi.Unpack("graceSeconds", data)
	if err != nil {
		return *new(uint64), err
	}
	out0 := *abi.ConvertType(out[0], new(uint64)).(*uint64)
	return out0, nil
}

// PackOpen is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xc7557992.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function open((bytes32,bytes32,address,address,uint32,uint256,uint256,uint256,uint64,uint64,uint64) d, bytes providerSig, bytes requesterSig) returns(bytes32 id)
func (escrow *Escrow) PackOpen(d EscrowDeal, providerSig []byte, requesterSig []byte) []byte {
	enc, err := escrow.abi.Pack("open", d, providerSig, requesterSig)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackOpen is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xc7557992.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function open((bytes32,bytes32,address,address,uint32,uint256,uint256,uint256,uint64,uint64,uint64) d, bytes providerSig, bytes requesterSig) returns(bytes32 id)
func (escrow *Escrow) TryPackOpen(d EscrowDeal, providerSig []byte, requesterSig []byte) ([]byte, error) {
	return escrow.abi.Pack("open", d, providerSig, requesterSig)
}

// UnpackOpen is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0xc7557992.
//
// Solidity: function open((bytes32,bytes32,address,address,uint32,uint256,uint256,uint256,uint64,uint64,uint64) d, bytes providerSig, bytes requesterSig) returns(bytes32 id)
func (escrow *Escrow) UnpackOpen(data []byte) ([32]byte, error) {
	out, err := escrow.abi.Unpack("open", data)
	if err != nil {
		return *new([32]byte), err
	}
	out0 := *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)
	return out0, nil
}

// PackRefund is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x67cd9f7e.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function refund((bytes32,bytes32,address,address,uint32,uint256,uint256,uint256,uint64,uint64,uint64) d) returns()
func (escrow *Escrow) PackRefund(d EscrowDeal) []byte {
	enc, err := escrow.abi.Pack("refund", d)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackRefund is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x67cd9f7e.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function refund((bytes32,bytes32,address,address,uint32,uint256,uint256,uint256,uint64,uint64,uint64) d) returns()
func (escrow *Escrow) TryPackRefund(d EscrowDeal) ([]byte, error) {
	return escrow.abi.Pack("refund", d)
}

// PackSettle is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x9e2dc573.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function settle((bytes32,bytes32,address,address,uint32,uint256,uint256,uint256,uint64,uint64,uint64) d, (bytes32,uint256,uint64,bytes32) v, bytes requesterSig) returns()
func (escrow *Escrow) PackSettle(d EscrowDeal, v EscrowVoucher, requesterSig []byte) []byte {
	enc, err := escrow.abi.Pack("settle", d, v, requesterSig)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackSettle is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x9e2dc573.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function settle((bytes32,bytes32,address,address,uint32,uint256,uint256,uint256,uint64,uint64,uint64) d, (bytes32,uint256,uint64,bytes32) v, bytes requesterSig) returns()
func (escrow *Escrow) TryPackSettle(d EscrowDeal, v EscrowVoucher, requesterSig []byte) ([]byte, error) {
	return escrow.abi.Pack("settle", d, v, requesterSig)
}

// PackToken is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xfc0c546a.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function token() view returns(address)
func (escrow *Escrow) PackToken() []byte {
	enc, err := escrow.abi.Pack("token")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackToken is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xfc0c546a.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function token() view returns(address)
func (escrow *Escrow) TryPackToken() ([]byte, error) {
	return escrow.abi.Pack("token")
}

// UnpackToken is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0xfc0c546a.
//
// Solidity: function token() view returns(address)
func (escrow *Escrow) UnpackToken(data []byte) (common.Address, error) {
	out, err := escrow.abi.Unpack("token", data)
	if err != nil {
		return *new(common.Address), err
	}
	out0 := *abi.ConvertType(out[0], new(common.Address)).(*common.Address)
	return out0, nil
}

// PackTreasury is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x61d027b3.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function treasury() view returns(address)
func (escrow *Escrow) PackTreasury() []byte {
	enc, err := escrow.abi.Pack("treasury")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackTreasury is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x61d027b3.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function treasury() view returns(address)
func (escrow *Escrow) TryPackTreasury() ([]byte, error) {
	return escrow.abi.Pack("treasury")
}

// UnpackTreasury is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x61d027b3.
//
// Solidity: function treasury() view returns(address)
func (escrow *Escrow) UnpackTreasury(data []byte) (common.Address, error) {
	out, err := escrow.abi.Unpack("treasury", data)
	if err != nil {
		return *new(common.Address), err
	}
	out0 := *abi.ConvertType(out[0], new(common.Address)).(*common.Address)
	return out0, nil
}

// PackVoucherDigest is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x71abb662.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function voucherDigest((bytes32,uint256,uint64,bytes32) v) view returns(bytes32)
func (escrow *Escrow) PackVoucherDigest(v EscrowVoucher) []byte {
	enc, err := escrow.abi.Pack("voucherDigest", v)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackVoucherDigest is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x71abb662.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function voucherDigest((bytes32,uint256,uint64,bytes32) v) view returns(bytes32)
func (escrow *Escrow) TryPackVoucherDigest(v EscrowVoucher) ([]byte, error) {
	return escrow.abi.Pack("voucherDigest", v)
}

// UnpackVoucherDigest is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x71abb662.
//
// Solidity: function voucherDigest((bytes32,uint256,uint64,bytes32) v) view returns(bytes32)
func (escrow *Escrow) UnpackVoucherDigest(data []byte) ([32]byte, error) {
	out, err := escrow.abi.Unpack("voucherDigest", data)
	if err != nil {
		return *new([32]byte), err
	}
	out0 := *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)
	return out0, nil
}

// PackWithdraw is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x2e1a7d4d.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function withdraw(uint256 amount) returns()
func (escrow *Escrow) PackWithdraw(amount *big.Int) []byte {
	enc, err := escrow.abi.Pack("withdraw", amount)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackWithdraw is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x2e1a7d4d.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function withdraw(uint256 amount) returns()
func (escrow *Escrow) TryPackWithdraw(amount *big.Int) ([]byte, error) {
	return escrow.abi.Pack("withdraw", amount)
}

// EscrowCancelled represents a Cancelled event raised by the Escrow contract.
type EscrowCancelled struct {
	DealId [32]byte
	Raw    *types.Log // Blockchain specific contextual infos
}

const EscrowCancelledEventName = "Cancelled"

// ContractEventName returns the user-defined event name.
func (EscrowCancelled) ContractEventName() string {
	return EscrowCancelledEventName
}

// UnpackCancelledEvent is the Go binding that unpacks the event data emitted
// by contract.
//
// Solidity: event Cancelled(bytes32 indexed dealId)
func (escrow *Escrow) UnpackCancelledEvent(log *types.Log) (*EscrowCancelled, error) {
	event := "Cancelled"
	if len(log.Topics) == 0 {
		return nil, bind.ErrNoEventSignature
	}
	if log.Topics[0] != escrow.abi.Events[event].ID {
		return nil, bind.ErrEventSignatureMismatch
	}
	out := new(EscrowCancelled)
	if len(log.Data) > 0 {
		if err := escrow.abi.UnpackIntoInterface(out, event, log.Data); err != nil {
			return nil, err
		}
	}
	var indexed abi.Arguments
	for _, arg := range escrow.abi.Events[event].Inputs {
		if arg.Indexed {
			indexed = append(indexed, arg)
		}
	}
	if err := abi.ParseTopics(out, indexed, log.Topics[1:]); err != nil {
		return nil, err
	}
	out.Raw = log
	return out, nil
}

// EscrowDeposited represents a Deposited event raised by the Escrow contract.
type EscrowDeposited struct {
	Account common.Address
	Amount  *big.Int
	Raw     *types.Log // Blockchain specific contextual infos
}

const EscrowDepositedEventName = "Deposited"

// ContractEventName returns the user-defined event name.
func (EscrowDeposited) ContractEventName() string {
	return EscrowDepositedEventName
}

// UnpackDepositedEvent is the Go binding that unpacks the event data emitted
// by contract.
//
// Solidity: event Deposited(address indexed account, uint256 amount)
func (escrow *Escrow) UnpackDepositedEvent(log *types.Log) (*EscrowDeposited, error) {
	event := "Deposited"
	if len(log.Topics) == 0 {
		return nil, bind.ErrNoEventSignature
	}
	if log.Topics[0] != escrow.abi.Events[event].ID {
		return nil, bind.ErrEventSignatureMismatch
	}
	out := new(EscrowDeposited)
	if len(log.Data) > 0 {
		if err := escrow.abi.UnpackIntoInterface(out, event, log.Data); err != nil {
			return nil, err
		}
	}
	var indexed abi.Arguments
	for _, arg := range escrow.abi.Events[event].Inputs {
		if arg.Indexed {
			indexed = append(indexed, arg)
		}
	}
	if err := abi.ParseTopics(out, indexed, log.Topics[1:]); err != nil {
		return nil, err
	}
	out.Raw = log
	return out, nil
}

// EscrowOpened represents a Opened event raised by the Escrow contract.
type EscrowOpened struct {
	DealId    [32]byte
	Provider  common.Address
	Requester common.Address
	MaxAmount *big.Int
	Deadline  uint64
	Raw       *types.Log // Blockchain specific contextual infos
}

const EscrowOpenedEventName = "Opened"

// ContractEventName returns the user-defined event name.
func (EscrowOpened) ContractEventName() string {
	return EscrowOpenedEventName
}

// UnpackOpenedEvent is the Go binding that unpacks the event data emitted
// by contract.
//
// Solidity: event Opened(bytes32 indexed dealId, address indexed provider, address indexed requester, uint256 maxAmount, uint64 deadline)
func (escrow *Escrow) UnpackOpenedEvent(log *types.Log) (*EscrowOpened, error) {
	event := "Opened"
	if len(log.Topics) == 0 {
		return nil, bind.ErrNoEventSignature
	}
	if log.Topics[0] != escrow.abi.Events[event].ID {
		return nil, bind.ErrEventSignatureMismatch
	}
	out := new(EscrowOpened)
	if len(log.Data) > 0 {
		if err := escrow.abi.UnpackIntoInterface(out, event, log.Data); err != nil {
			return nil, err
		}
	}
	var indexed abi.Arguments
	for _, arg := range escrow.abi.Events[event].Inputs {
		if arg.Indexed {
			indexed = append(indexed, arg)
		}
	}
	if err := abi.ParseTopics(out, indexed, log.Topics[1:]); err != nil {
		return nil, err
	}
	out.Raw = log
	return out, nil
}

// EscrowRefunded represents a Refunded event raised by the Escrow contract.
type EscrowRefunded struct {
	DealId [32]byte
	Amount *big.Int
	Raw    *types.Log // Blockchain specific contextual infos
}

const EscrowRefundedEventName = "Refunded"

// ContractEventName returns the user-defined event name.
func (EscrowRefunded) ContractEventName() string {
	return EscrowRefundedEventName
}

// UnpackRefundedEvent is the Go binding that unpacks the event data emitted
// by contract.
//
// Solidity: event Refunded(bytes32 indexed dealId, uint256 amount)
func (escrow *Escrow) UnpackRefundedEvent(log *types.Log) (*EscrowRefunded, error) {
	event := "Refunded"
	if len(log.Topics) == 0 {
		return nil, bind.ErrNoEventSignature
	}
	if log.Topics[0] != escrow.abi.Events[event].ID {
		return nil, bind.ErrEventSignatureMismatch
	}
	out := new(EscrowRefunded)
	if len(log.Data) > 0 {
		if err := escrow.abi.UnpackIntoInterface(out, event, log.Data); err != nil {
			return nil, err
		}
	}
	var indexed abi.Arguments
	for _, arg := range escrow.abi.Events[event].Inputs {
		if arg.Indexed {
			indexed = append(indexed, arg)
		}
	}
	if err := abi.ParseTopics(out, indexed, log.Topics[1:]); err != nil {
		return nil, err
	}
	out.Raw = log
	return out, nil
}

// EscrowSettled represents a Settled event raised by the Escrow contract.
type EscrowSettled struct {
	DealId      [32]byte
	Amount      *big.Int
	Commission  *big.Int
	ByteCount   uint64
	ConnLogHash [32]byte
	Raw         *types.Log // Blockchain specific contextual infos
}

const EscrowSettledEventName = "Settled"

// ContractEventName returns the user-defined event name.
func (EscrowSettled) ContractEventName() string {
	return EscrowSettledEventName
}

// UnpackSettledEvent is the Go binding that unpacks the event data emitted
// by contract.
//
// Solidity: event Settled(bytes32 indexed dealId, uint256 amount, uint256 commission, uint64 byteCount, bytes32 connLogHash)
func (escrow *Escrow) UnpackSettledEvent(log *types.Log) (*EscrowSettled, error) {
	event := "Settled"
	if len(log.Topics) == 0 {
		return nil, bind.ErrNoEventSignature
	}
	if log.Topics[0] != escrow.abi.Events[event].ID {
		return nil, bind.ErrEventSignatureMismatch
	}
	out := new(EscrowSettled)
	if len(log.Data) > 0 {
		if err := escrow.abi.UnpackIntoInterface(out, event, log.Data); err != nil {
			return nil, err
		}
	}
	var indexed abi.Arguments
	for _, arg := range escrow.abi.Events[event].Inputs {
		if arg.Indexed {
			indexed = append(indexed, arg)
		}
	}
	if err := abi.ParseTopics(out, indexed, log.Topics[1:]); err != nil {
		return nil, err
	}
	out.Raw = log
	return out, nil
}

// EscrowWithdrawn represents a Withdrawn event raised by the Escrow contract.
type EscrowWithdrawn struct {
	Account common.Address
	Amount  *big.Int
	Raw     *types.Log // Blockchain specific contextual infos
}

const EscrowWithdrawnEventName = "Withdrawn"

// ContractEventName returns the user-defined event name.
func (EscrowWithdrawn) ContractEventName() string {
	return EscrowWithdrawnEventName
}

// UnpackWithdrawnEvent is the Go binding that unpacks the event data emitted
// by contract.
//
// Solidity: event Withdrawn(address indexed account, uint256 amount)
func (escrow *Escrow) UnpackWithdrawnEvent(log *types.Log) (*EscrowWithdrawn, error) {
	event := "Withdrawn"
	if len(log.Topics) == 0 {
		return nil, bind.ErrNoEventSignature
	}
	if log.Topics[0] != escrow.abi.Events[event].ID {
		return nil, bind.ErrEventSignatureMismatch
	}
	out := new(EscrowWithdrawn)
	if len(log.Data) > 0 {
		if err := escrow.abi.UnpackIntoInterface(out, event, log.Data); err != nil {
			return nil, err
		}
	}
	var indexed abi.Arguments
	for _, arg := range escrow.abi.Events[event].Inputs {
		if arg.Indexed {
			indexed = append(indexed, arg)
		}
	}
	if err := abi.ParseTopics(out, indexed, log.Topics[1:]); err != nil {
		return nil, err
	}
	out.Raw = log
	return out, nil
}

// UnpackError attempts to decode the provided error data using user-defined
// error definitions.
func (escrow *Escrow) UnpackError(raw []byte) (any, error) {
	if bytes.Equal(raw[:4], escrow.abi.Errors["AmountAboveLocked"].ID.Bytes()[:4]) {
		return escrow.UnpackAmountAboveLockedError(raw[4:])
	}
	if bytes.Equal(raw[:4], escrow.abi.Errors["AmountTooLarge"].ID.Bytes()[:4]) {
		return escrow.UnpackAmountTooLargeError(raw[4:])
	}
	if bytes.Equal(raw[:4], escrow.abi.Errors["BadSignature"].ID.Bytes()[:4]) {
		return escrow.UnpackBadSignatureError(raw[4:])
	}
	if bytes.Equal(raw[:4], escrow.abi.Errors["DealExists"].ID.Bytes()[:4]) {
		return escrow.UnpackDealExistsError(raw[4:])
	}
	if bytes.Equal(raw[:4], escrow.abi.Errors["DealNotOpen"].ID.Bytes()[:4]) {
		return escrow.UnpackDealNotOpenError(raw[4:])
	}
	if bytes.Equal(raw[:4], escrow.abi.Errors["InsufficientBalance"].ID.Bytes()[:4]) {
		return escrow.UnpackInsufficientBalanceError(raw[4:])
	}
	if bytes.Equal(raw[:4], escrow.abi.Errors["InvalidConfig"].ID.Bytes()[:4]) {
		return escrow.UnpackInvalidConfigError(raw[4:])
	}
	if bytes.Equal(raw[:4], escrow.abi.Errors["InvalidTerms"].ID.Bytes()[:4]) {
		return escrow.UnpackInvalidTermsError(raw[4:])
	}
	if bytes.Equal(raw[:4], escrow.abi.Errors["NotProvider"].ID.Bytes()[:4]) {
		return escrow.UnpackNotProviderError(raw[4:])
	}
	if bytes.Equal(raw[:4], escrow.abi.Errors["RefundTooEarly"].ID.Bytes()[:4]) {
		return escrow.UnpackRefundTooEarlyError(raw[4:])
	}
	if bytes.Equal(raw[:4], escrow.abi.Errors["TransferFailed"].ID.Bytes()[:4]) {
		return escrow.UnpackTransferFailedError(raw[4:])
	}
	if bytes.Equal(raw[:4], escrow.abi.Errors["VoucherDealMismatch"].ID.Bytes()[:4]) {
		return escrow.UnpackVoucherDealMismatchError(raw[4:])
	}
	if bytes.Equal(raw[:4], escrow.abi.Errors["WrongSigner"].ID.Bytes()[:4]) {
		return escrow.UnpackWrongSignerError(raw[4:])
	}
	if bytes.Equal(raw[:4], escrow.abi.Errors["ZeroAmount"].ID.Bytes()[:4]) {
		return escrow.UnpackZeroAmountError(raw[4:])
	}
	return nil, errors.New("Unknown error")
}

// EscrowAmountAboveLocked represents a AmountAboveLocked error raised by the Escrow contract.
type EscrowAmountAboveLocked struct {
	Amount    *big.Int
	MaxAmount *big.Int
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error AmountAboveLocked(uint256 amount, uint256 maxAmount)
func EscrowAmountAboveLockedErrorID() common.Hash {
	return common.HexToHash("0x0d8dd7054d819167b17ea05226f1b17153f58b6a3464094193172475e07cee7f")
}

// UnpackAmountAboveLockedError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error AmountAboveLocked(uint256 amount, uint256 maxAmount)
func (escrow *Escrow) UnpackAmountAboveLockedError(raw []byte) (*EscrowAmountAboveLocked, error) {
	out := new(EscrowAmountAboveLocked)
	if err := escrow.abi.UnpackIntoInterface(out, "AmountAboveLocked", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// EscrowAmountTooLarge represents a AmountTooLarge error raised by the Escrow contract.
type EscrowAmountTooLarge struct {
	Amount *big.Int
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error AmountTooLarge(uint256 amount)
func EscrowAmountTooLargeErrorID() common.Hash {
	return common.HexToHash("0x08083b2a16b607736bde3b2f81a2e47b6cddd068539243b1d8b47462dd533e58")
}

// UnpackAmountTooLargeError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error AmountTooLarge(uint256 amount)
func (escrow *Escrow) UnpackAmountTooLargeError(raw []byte) (*EscrowAmountTooLarge, error) {
	out := new(EscrowAmountTooLarge)
	if err := escrow.abi.UnpackIntoInterface(out, "AmountTooLarge", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// EscrowBadSignature represents a BadSignature error raised by the Escrow contract.
type EscrowBadSignature struct {
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error BadSignature()
func EscrowBadSignatureErrorID() common.Hash {
	return common.HexToHash("0x5cd5d2335541c4f2ed05fbe44f397e8b79f8e2333157122d2dab06e378ef7685")
}

// UnpackBadSignatureError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error BadSignature()
func (escrow *Escrow) UnpackBadSignatureError(raw []byte) (*EscrowBadSignature, error) {
	out := new(EscrowBadSignature)
	if err := escrow.abi.UnpackIntoInterface(out, "BadSignature", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// EscrowDealExists represents a DealExists error raised by the Escrow contract.
type EscrowDealExists struct {
	DealId [32]byte
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error DealExists(bytes32 dealId)
func EscrowDealExistsErrorID() common.Hash {
	return common.HexToHash("0xb3e2817b959853b0c0e422419836f9dcbdcac91a2744580c66e7c31a5ce43308")
}

// UnpackDealExistsError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error DealExists(bytes32 dealId)
func (escrow *Escrow) UnpackDealExistsError(raw []byte) (*EscrowDealExists, error) {
	out := new(EscrowDealExists)
	if err := escrow.abi.UnpackIntoInterface(out, "DealExists", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// EscrowDealNotOpen represents a DealNotOpen error raised by the Escrow contract.
type EscrowDealNotOpen struct {
	DealId [32]byte
	Status uint8
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error DealNotOpen(bytes32 dealId, uint8 status)
func EscrowDealNotOpenErrorID() common.Hash {
	return common.HexToHash("0xc75cc8e1044c2f648e7f7a827f049567a4fd747e43c66a527c960ae390d6e699")
}

// UnpackDealNotOpenError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error DealNotOpen(bytes32 dealId, uint8 status)
func (escrow *Escrow) UnpackDealNotOpenError(raw []byte) (*EscrowDealNotOpen, error) {
	out := new(EscrowDealNotOpen)
	if err := escrow.abi.UnpackIntoInterface(out, "DealNotOpen", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// EscrowInsufficientBalance represents a InsufficientBalance error raised by the Escrow contract.
type EscrowInsufficientBalance struct {
	Account common.Address
	Balance *big.Int
	Needed  *big.Int
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error InsufficientBalance(address account, uint256 balance, uint256 needed)
func EscrowInsufficientBalanceErrorID() common.Hash {
	return common.HexToHash("0xdb42144d928cd19733b9dfeead8bc02ed403845c274e06a6eee0944fb25ca5c4")
}

// UnpackInsufficientBalanceError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error InsufficientBalance(address account, uint256 balance, uint256 needed)
func (escrow *Escrow) UnpackInsufficientBalanceError(raw []byte) (*EscrowInsufficientBalance, error) {
	out := new(EscrowInsufficientBalance)
	if err := escrow.abi.UnpackIntoInterface(out, "InsufficientBalance", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// EscrowInvalidConfig represents a InvalidConfig error raised by the Escrow contract.
type EscrowInvalidConfig struct {
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error InvalidConfig()
func EscrowInvalidConfigErrorID() common.Hash {
	return common.HexToHash("0x35be3ac88eaaf385e6b33d44d849a44bdc3ae215676d5d7e0194dfe20d80c66e")
}

// UnpackInvalidConfigError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error InvalidConfig()
func (escrow *Escrow) UnpackInvalidConfigError(raw []byte) (*EscrowInvalidConfig, error) {
	out := new(EscrowInvalidConfig)
	if err := escrow.abi.UnpackIntoInterface(out, "InvalidConfig", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// EscrowInvalidTerms represents a InvalidTerms error raised by the Escrow contract.
type EscrowInvalidTerms struct {
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error InvalidTerms()
func EscrowInvalidTermsErrorID() common.Hash {
	return common.HexToHash("0x0256965f9b387bc8ec6c98cf0ff582eaf117751bcb03b5eac94f4b122d4a5fc9")
}

// UnpackInvalidTermsError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error InvalidTerms()
func (escrow *Escrow) UnpackInvalidTermsError(raw []byte) (*EscrowInvalidTerms, error) {
	out := new(EscrowInvalidTerms)
	if err := escrow.abi.UnpackIntoInterface(out, "InvalidTerms", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// EscrowNotProvider represents a NotProvider error raised by the Escrow contract.
type EscrowNotProvider struct {
	Caller common.Address
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error NotProvider(address caller)
func EscrowNotProviderErrorID() common.Hash {
	return common.HexToHash("0x1bd2224f47bf32854983ee16847394426ab18eae693119e80eb952977965d64a")
}

// UnpackNotProviderError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error NotProvider(address caller)
func (escrow *Escrow) UnpackNotProviderError(raw []byte) (*EscrowNotProvider, error) {
	out := new(EscrowNotProvider)
	if err := escrow.abi.UnpackIntoInterface(out, "NotProvider", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// EscrowRefundTooEarly represents a RefundTooEarly error raised by the Escrow contract.
type EscrowRefundTooEarly struct {
	DealId      [32]byte
	AvailableAt *big.Int
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error RefundTooEarly(bytes32 dealId, uint256 availableAt)
func EscrowRefundTooEarlyErrorID() common.Hash {
	return common.HexToHash("0x2d1d8e9fe0d22bab8ad98e64b2a12337adb86dd3de4bcb94370b6fb50c40e553")
}

// UnpackRefundTooEarlyError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error RefundTooEarly(bytes32 dealId, uint256 availableAt)
func (escrow *Escrow) UnpackRefundTooEarlyError(raw []byte) (*EscrowRefundTooEarly, error) {
	out := new(EscrowRefundTooEarly)
	if err := escrow.abi.UnpackIntoInterface(out, "RefundTooEarly", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// EscrowTransferFailed represents a TransferFailed error raised by the Escrow contract.
type EscrowTransferFailed struct {
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error TransferFailed()
func EscrowTransferFailedErrorID() common.Hash {
	return common.HexToHash("0x90b8ec1877afffd816d05d9b13947f3ff18ec5851c38bad15ec2b710f92391b1")
}

// UnpackTransferFailedError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error TransferFailed()
func (escrow *Escrow) UnpackTransferFailedError(raw []byte) (*EscrowTransferFailed, error) {
	out := new(EscrowTransferFailed)
	if err := escrow.abi.UnpackIntoInterface(out, "TransferFailed", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// EscrowVoucherDealMismatch represents a VoucherDealMismatch error raised by the Escrow contract.
type EscrowVoucherDealMismatch struct {
	VoucherDealId [32]byte
	DealId        [32]byte
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error VoucherDealMismatch(bytes32 voucherDealId, bytes32 dealId)
func EscrowVoucherDealMismatchErrorID() common.Hash {
	return common.HexToHash("0x214760e381e773dc82980f3ef32493feef0a29f2a036ef935499950f52e0ca10")
}

// UnpackVoucherDealMismatchError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error VoucherDealMismatch(bytes32 voucherDealId, bytes32 dealId)
func (escrow *Escrow) UnpackVoucherDealMismatchError(raw []byte) (*EscrowVoucherDealMismatch, error) {
	out := new(EscrowVoucherDealMismatch)
	if err := escrow.abi.UnpackIntoInterface(out, "VoucherDealMismatch", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// EscrowWrongSigner represents a WrongSigner error raised by the Escrow contract.
type EscrowWrongSigner struct {
	Expected  common.Address
	Recovered common.Address
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error WrongSigner(address expected, address recovered)
func EscrowWrongSignerErrorID() common.Hash {
	return common.HexToHash("0x366d29f7de543b1e5962d6f7315450f1f5ec3d853d28dca80282b4c242185268")
}

// UnpackWrongSignerError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error WrongSigner(address expected, address recovered)
func (escrow *Escrow) UnpackWrongSignerError(raw []byte) (*EscrowWrongSigner, error) {
	out := new(EscrowWrongSigner)
	if err := escrow.abi.UnpackIntoInterface(out, "WrongSigner", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// EscrowZeroAmount represents a ZeroAmount error raised by the Escrow contract.
type EscrowZeroAmount struct {
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error ZeroAmount()
func EscrowZeroAmountErrorID() common.Hash {
	return common.HexToHash("0x1f2a2005cb66a8e145327e8814e243a0996aec9bfe1e15a495778b1236dbd485")
}

// UnpackZeroAmountError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error ZeroAmount()
func (escrow *Escrow) UnpackZeroAmountError(raw []byte) (*EscrowZeroAmount, error) {
	out := new(EscrowZeroAmount)
	if err := escrow.abi.UnpackIntoInterface(out, "ZeroAmount", raw); err != nil {
		return nil, err
	}
	return out, nil
}
