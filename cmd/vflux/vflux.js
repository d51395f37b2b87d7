// The "vflux" RPC namespace for go-ethereum's JavaScript console.
//
// `vflux attach` loads this file before anything else. geth's console knows
// only its own namespaces; with geth, preload it:
//
//   geth attach --preload cmd/vflux/vflux.js ./data/vflux.ipc
//
// Every method of the node's vflux API (node/api.go) is here under its RPC
// name without the "vflux_" prefix; a test in cmd/vflux checks that none is
// missing. The events subscription (vflux_subscribe) is not here: the console
// makes synchronous calls only. Amounts may be numbers or strings ("1e12",
// "0x10", "1_000").

// vfluxAsList lets a single node ID stand for a list of one.
function vfluxAsList(ids) {
	return (typeof ids === 'string') ? [ids] : ids;
}

web3._extend({
	property: 'vflux',
	methods: [
		new web3._extend.Method({name: 'serverInfo', call: 'vflux_serverInfo', params: 0}),
		new web3._extend.Method({name: 'clientInfo', call: 'vflux_clientInfo', params: 1, inputFormatter: [vfluxAsList]}),
		new web3._extend.Method({name: 'priorityClientInfo', call: 'vflux_priorityClientInfo', params: 3}),
		new web3._extend.Method({name: 'connectedClientInfo', call: 'vflux_connectedClientInfo', params: 1}),
		// addBalance(id, amount[, {clamp: true}])
		new web3._extend.Method({name: 'addBalance', call: 'vflux_addBalance', params: 3, inputFormatter: [null, null, null]}),
		new web3._extend.Method({name: 'setClientParams', call: 'vflux_setClientParams', params: 2, inputFormatter: [vfluxAsList, null]}),
		new web3._extend.Method({name: 'setDefaultParams', call: 'vflux_setDefaultParams', params: 1}),
		new web3._extend.Method({name: 'setConnectedBias', call: 'vflux_setConnectedBias', params: 1}),
		new web3._extend.Method({name: 'setLimits', call: 'vflux_setLimits', params: 2}),
	],
});

var vflux = web3.vflux;
