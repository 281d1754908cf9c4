// Package torchimport reads PyTorch weights into deepgo models.
//
// Entry points, for `deepgo import` (cmd/deepgo/import.go dispatches .pt,
// .pth and .safetensors files here):
//
//	sd, err := torchimport.ReadStateDict("model.pt")     // torch.save zip or safetensors
//	rep, err := torchimport.Load(module, sd, true)        // copy into an nn.Module, with a Report
//	pkg, rep, err := torchimport.ImportToPackage("model.pt",
//		torchimport.ImportOptions{Arch: "model.json"}, "out/") // build a model package
//
// A state dict holds weights only, so ImportToPackage takes the
// architecture from a model.json manifest (ImportOptions.Arch, the CLI's
// --arch) or from an existing model package (ImportOptions.Like, --like);
// the module built from it must have PyTorch's key names, which the
// model layer registry guarantees for the built-in layers.
//
// The torch.save reader has its own small unpickler for the subset
// torch.save writes (protocols 2–5: collections.OrderedDict,
// torch._utils._rebuild_tensor_v2 and _rebuild_parameter, typed storages
// through persistent ids). It runs no code; any other global is an error
// naming it. Every size in the file is checked before allocation, so a
// truncated or hostile file is an error, never a panic or a giant
// allocation (see Limits). Legacy non-zip checkpoints (torch < 1.6 or
// _use_new_zipfile_serialization=False) give ErrLegacyFormat.
//
// Fixtures in testdata are made by tools/fixtures/torch_pt.py.
package torchimport
