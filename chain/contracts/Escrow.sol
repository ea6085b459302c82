// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @dev The two token calls the escrow makes. The token is fixed at
/// deployment (IPSXToken), which has no transfer hooks.
interface IERC20Minimal {
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

/// @title IPSX deal escrow
/// @notice Holds requesters' funds for IP rental deals and pays providers
/// with the requester's latest cumulative voucher.
///
/// Accounting: every address has a free `balance` and a `reserved` amount,
/// disjoint; the escrow's token balance always equals the sum of both over all
/// addresses. `deposit` and `withdraw` move tokens between the caller's wallet
/// and its free balance. `open` moves a deal's maxAmount from the requester's
/// balance to its reserved; `settle`, `refund` and `cancel` release it again.
///
/// Deal id: the EIP-712 digest of the Deal terms under this contract's domain
/// (name "IPSX", version "1", chainId, verifyingContract = this). Only one
/// status byte per deal id is stored; the terms are passed again as calldata
/// to settle/refund/cancel and re-hashed, which is cheaper than storing them.
/// A deal id can be opened once, ever: a closed deal's status stays.
///
/// Commission: commissionBps/10000 of the paid amount, rounded down, credited
/// to the treasury's escrow balance (the treasury withdraws it like anyone).
///
/// The connection-log hash of the settling voucher is anchored in the Settled
/// event (a receipt log), not in storage.
contract Escrow {
    struct Deal {
        bytes32 offerId;
        bytes32 requestId;
        address provider;
        address requester;
        uint32 ips;
        uint256 pricePerIpHour; // token base units per IP per hour
        uint256 pricePerGB; // token base units per 10^9 bytes
        uint256 maxAmount; // reserved at open; the most the provider can be paid
        uint64 start; // unix seconds
        uint64 deadline; // unix seconds; refundable from deadline + graceSeconds
        uint64 nonce; // distinguishes otherwise identical terms
    }

    /// A cumulative payment the requester signs while the deal runs; the
    /// provider settles with the latest one.
    struct Voucher {
        bytes32 dealId;
        uint256 amount; // cumulative token base units
        uint64 byteCount; // cumulative bytes served
        bytes32 connLogHash; // hash of the co-signed connection log
    }

    struct Account {
        uint128 balance;
        uint128 reserved;
    }

    uint8 public constant STATUS_NONE = 0;
    uint8 public constant STATUS_OPEN = 1;
    uint8 public constant STATUS_SETTLED = 2;
    uint8 public constant STATUS_REFUNDED = 3;
    uint8 public constant STATUS_CANCELLED = 4;

    uint16 public constant MAX_COMMISSION_BPS = 500;

    bytes32 public constant DEAL_TYPEHASH = keccak256(
        "Deal(bytes32 offerId,bytes32 requestId,address provider,address requester,uint32 ips,uint256 pricePerIpHour,uint256 pricePerGB,uint256 maxAmount,uint64 start,uint64 deadline,uint64 nonce)"
    );
    bytes32 public constant VOUCHER_TYPEHASH =
        keccak256("Voucher(bytes32 dealId,uint256 amount,uint64 byteCount,bytes32 connLogHash)");
    bytes32 public constant CANCEL_TYPEHASH = keccak256("Cancel(bytes32 dealId)");
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    /// secp256k1n / 2: signatures with a higher s are malleable copies.
    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    IERC20Minimal public immutable token;
    address public immutable treasury;
    uint16 public immutable commissionBps;
    uint64 public immutable graceSeconds;

    uint256 private immutable cachedChainId;
    bytes32 private immutable cachedDomainSeparator;

    mapping(address => Account) public accounts;
    mapping(bytes32 => uint8) public dealStatus;

    event Deposited(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);
    event Opened(bytes32 indexed dealId, address indexed provider, address indexed requester, uint256 maxAmount, uint64 deadline);
    event Settled(bytes32 indexed dealId, uint256 amount, uint256 commission, uint64 byteCount, bytes32 connLogHash);
    event Refunded(bytes32 indexed dealId, uint256 amount);
    event Cancelled(bytes32 indexed dealId);

    error InvalidConfig();
    error ZeroAmount();
    error AmountTooLarge(uint256 amount);
    error TransferFailed();
    error InsufficientBalance(address account, uint256 balance, uint256 needed);
    error InvalidTerms();
    error BadSignature();
    error WrongSigner(address expected, address recovered);
    error DealExists(bytes32 dealId);
    error DealNotOpen(bytes32 dealId, uint8 status);
    error NotProvider(address caller);
    error VoucherDealMismatch(bytes32 voucherDealId, bytes32 dealId);
    error AmountAboveLocked(uint256 amount, uint256 maxAmount);
    error RefundTooEarly(bytes32 dealId, uint256 availableAt);

    constructor(IERC20Minimal token_, address treasury_, uint16 commissionBps_, uint64 graceSeconds_) {
        if (address(token_) == address(0) || treasury_ == address(0) || commissionBps_ > MAX_COMMISSION_BPS) {
            revert InvalidConfig();
        }
        token = token_;
        treasury = treasury_;
        commissionBps = commissionBps_;
        graceSeconds = graceSeconds_;
        cachedChainId = block.chainid;
        cachedDomainSeparator = _buildDomainSeparator();
    }

    // ---- funds ----

    /// Pulls amount tokens from the caller (who must have approved this
    /// contract) into its free balance.
    function deposit(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        if (amount > type(uint128).max) revert AmountTooLarge(amount);
        if (!token.transferFrom(msg.sender, address(this), amount)) revert TransferFailed();
        accounts[msg.sender].balance += uint128(amount);
        emit Deposited(msg.sender, amount);
    }

    /// Sends amount tokens from the caller's free balance to its wallet.
    function withdraw(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Account storage a = accounts[msg.sender];
        uint256 bal = a.balance;
        if (amount > bal) revert InsufficientBalance(msg.sender, bal, amount);
        unchecked {
            a.balance = uint128(bal - amount);
        }
        emit Withdrawn(msg.sender, amount);
        if (!token.transfer(msg.sender, amount)) revert TransferFailed();
    }

    // ---- deals ----

    /// Opens a deal signed by both parties: reserves d.maxAmount of the
    /// requester's free balance. Anyone may submit it.
    function open(Deal calldata d, bytes calldata providerSig, bytes calldata requesterSig)
        external
        returns (bytes32 id)
    {
        if (d.deadline <= block.timestamp || d.start >= d.deadline || d.maxAmount == 0) revert InvalidTerms();
        if (d.maxAmount > type(uint128).max) revert AmountTooLarge(d.maxAmount);
        id = _hashTypedData(keccak256(abi.encode(DEAL_TYPEHASH, d)));
        if (dealStatus[id] != STATUS_NONE) revert DealExists(id);
        _checkSig(id, providerSig, d.provider);
        _checkSig(id, requesterSig, d.requester);

        Account storage r = accounts[d.requester];
        uint128 amount = uint128(d.maxAmount);
        uint128 bal = r.balance;
        if (bal < amount) revert InsufficientBalance(d.requester, bal, amount);
        unchecked {
            // reserved + balance of one account never exceeds the token supply.
            r.balance = bal - amount;
            r.reserved += amount;
        }
        dealStatus[id] = STATUS_OPEN;
        emit Opened(id, d.provider, d.requester, amount, d.deadline);
    }

    /// Pays the provider (the caller) the voucher's cumulative amount less
    /// the commission and returns the rest of the reservation to the
    /// requester. Allowed any time while the deal is open, also after the
    /// refund window opened, as long as nobody refunded first.
    function settle(Deal calldata d, Voucher calldata v, bytes calldata requesterSig) external {
        bytes32 id = _openDeal(d);
        if (msg.sender != d.provider) revert NotProvider(msg.sender);
        if (v.dealId != id) revert VoucherDealMismatch(v.dealId, id);
        if (v.amount > d.maxAmount) revert AmountAboveLocked(v.amount, d.maxAmount);
        _checkSig(_hashTypedData(keccak256(abi.encode(VOUCHER_TYPEHASH, v))), requesterSig, d.requester);

        dealStatus[id] = STATUS_SETTLED;
        uint128 maxAmount = uint128(d.maxAmount); // checked at open
        uint128 paid = uint128(v.amount); // <= maxAmount
        uint128 fee = uint128((uint256(paid) * commissionBps) / 10_000);
        unchecked {
            Account storage r = accounts[d.requester];
            r.reserved -= maxAmount; // reserved at open and not released since
            r.balance += maxAmount - paid;
            accounts[d.provider].balance += paid - fee;
            if (fee != 0) accounts[treasury].balance += fee;
        }
        emit Settled(id, paid, fee, v.byteCount, v.connLogHash);
    }

    /// Returns the whole reservation to the requester once the deadline plus
    /// the grace period has passed and nobody settled. Anyone may call it.
    function refund(Deal calldata d) external {
        bytes32 id = _openDeal(d);
        uint256 availableAt = uint256(d.deadline) + graceSeconds;
        if (block.timestamp < availableAt) revert RefundTooEarly(id, availableAt);
        dealStatus[id] = STATUS_REFUNDED;
        _release(d);
        emit Refunded(id, d.maxAmount);
    }

    /// Cooperative close: both parties sign Cancel(dealId) and the whole
    /// reservation returns to the requester. Anyone may submit it.
    function cancel(Deal calldata d, bytes calldata providerSig, bytes calldata requesterSig) external {
        bytes32 id = _openDeal(d);
        bytes32 digest = _hashTypedData(keccak256(abi.encode(CANCEL_TYPEHASH, id)));
        _checkSig(digest, providerSig, d.provider);
        _checkSig(digest, requesterSig, d.requester);
        dealStatus[id] = STATUS_CANCELLED;
        _release(d);
        emit Cancelled(id);
    }

    // ---- views ----

    /// The deal id (EIP-712 digest) of the terms.
    function dealId(Deal calldata d) external view returns (bytes32) {
        return _hashTypedData(keccak256(abi.encode(DEAL_TYPEHASH, d)));
    }

    /// The EIP-712 digest the requester signs for a voucher.
    function voucherDigest(Voucher calldata v) external view returns (bytes32) {
        return _hashTypedData(keccak256(abi.encode(VOUCHER_TYPEHASH, v)));
    }

    /// The EIP-712 digest both parties sign to cancel a deal.
    function cancelDigest(bytes32 id) external view returns (bytes32) {
        return _hashTypedData(keccak256(abi.encode(CANCEL_TYPEHASH, id)));
    }

    function domainSeparator() public view returns (bytes32) {
        return block.chainid == cachedChainId ? cachedDomainSeparator : _buildDomainSeparator();
    }

    // ---- internals ----

    function _openDeal(Deal calldata d) private view returns (bytes32 id) {
        id = _hashTypedData(keccak256(abi.encode(DEAL_TYPEHASH, d)));
        uint8 s = dealStatus[id];
        if (s != STATUS_OPEN) revert DealNotOpen(id, s);
    }

    function _release(Deal calldata d) private {
        uint128 amount = uint128(d.maxAmount); // checked at open
        Account storage r = accounts[d.requester];
        unchecked {
            r.reserved -= amount;
            r.balance += amount;
        }
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("IPSX"), keccak256("1"), block.chainid, address(this)));
    }

    function _hashTypedData(bytes32 structHash) private view returns (bytes32 digest) {
        bytes32 sep = domainSeparator();
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, hex"1901")
            mstore(add(ptr, 0x02), sep)
            mstore(add(ptr, 0x22), structHash)
            digest := keccak256(ptr, 0x42)
        }
    }

    /// Accepts a 65-byte r‖s‖v signature with v in {0,1,27,28} and low s.
    function _checkSig(bytes32 digest, bytes calldata sig, address expected) private pure {
        if (sig.length != 65) revert BadSignature();
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := calldataload(sig.offset)
            s := calldataload(add(sig.offset, 32))
            v := byte(0, calldataload(add(sig.offset, 64)))
        }
        if (v < 27) v += 27;
        if (uint256(s) > HALF_N || (v != 27 && v != 28)) revert BadSignature();
        address got = ecrecover(digest, v, r, s);
        if (got == address(0)) revert BadSignature();
        if (got != expected) revert WrongSigner(expected, got);
    }
}
