// Package wallet reads what the payer holds: token balances, the state of
// EIP-3009 authorizations (at the newest and the finalized block) and
// transaction receipts, over JSON-RPC.
//
// It only reads. It never holds or asks for a key: the payer is an address,
// and nothing here can move funds. RPC URLs may carry API keys, so they are
// never put in errors or results.
package wallet
