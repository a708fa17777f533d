package main

import (
	"context"

	"github.com/plug-net/plug/httpui"
	"github.com/plug-net/plug/store"
	"github.com/plug-net/plug/store/archiver"
	"github.com/plug-net/plug/store/check"
	"github.com/plug-net/plug/store/prune"
	"github.com/plug-net/plug/store/repair"
	"github.com/plug-net/plug/store/restorer"
)

// backupsAPI serves the backups to the API and the pages
// (httpui.BackupsBackend, httpui.BrowseBackend): the store's answers in
// the API's types.
type backupsAPI struct{ a *app }

func (b backupsAPI) Backup(ctx context.Context, paths []string, progress func(archiver.Progress), warn func(string, error)) (httpui.BackupResult, error) {
	snap, err := b.a.repo.BackupNow(ctx, paths, store.BackupOptions{Progress: progress, Warn: warn})
	return httpui.ResultOf(snap), err
}

func (b backupsAPI) Snapshots(ctx context.Context) ([]httpui.SnapshotInfo, error) {
	snaps, err := b.a.repo.Snapshots()
	if err != nil {
		return nil, err
	}
	out := make([]httpui.SnapshotInfo, 0, len(snaps))
	for _, s := range snaps {
		if !s.StateOnly() { // the timeline's own backups are not the owner's folders
			out = append(out, httpui.InfoOf(s))
		}
	}
	return out, nil
}

func (b backupsAPI) Restore(ctx context.Context, req httpui.RestoreRequest, progress func(restorer.Progress)) (restorer.Stats, error) {
	snap, err := b.a.repo.FindSnapshot(req.Snapshot)
	if err != nil {
		return restorer.Stats{}, err
	}
	return b.a.repo.RestoreNow(ctx, snap, req.To, restorer.Options{Path: req.Path, Overwrite: req.Overwrite, Progress: progress})
}

func (b backupsAPI) Verify(ctx context.Context, readData bool, progress func(done, total int)) (check.Report, error) {
	return b.a.repo.Verify(ctx, check.Options{ReadData: readData, Progress: progress})
}

func (b backupsAPI) Repair(ctx context.Context) (repair.Report, error) {
	return b.a.repo.Repair(ctx, b.a.cfg.grace)
}

func (b backupsAPI) Forget(ctx context.Context, keepLast int, withPrune bool) (store.ForgetReport, error) {
	return b.a.repo.Forget(ctx, prune.Retention{Last: keepLast}, withPrune)
}

func (b backupsAPI) Sources(ctx context.Context) ([]string, error) { return b.a.repo.Sources() }

func (b backupsAPI) AddSource(ctx context.Context, path string) ([]string, error) {
	return b.a.repo.AddSource(path)
}

func (b backupsAPI) RemoveSource(ctx context.Context, path string) ([]string, error) {
	return b.a.repo.RemoveSource(path)
}

func (b backupsAPI) SnapshotTree(ctx context.Context, ref, p string) (httpui.SnapshotDir, error) {
	snap, err := b.a.repo.FindSnapshot(ref)
	if err != nil {
		return httpui.SnapshotDir{}, err
	}
	nodes, err := b.a.repo.ListFolder(ctx, snap, p)
	if err != nil {
		return httpui.SnapshotDir{}, err
	}
	return httpui.DirOf(httpui.InfoOf(snap), p, nodes), nil
}

func (b backupsAPI) OpenSnapshotFile(ctx context.Context, ref, p string) (*httpui.SnapshotFile, error) {
	snap, err := b.a.repo.FindSnapshot(ref)
	if err != nil {
		return nil, err
	}
	d, err := b.a.repo.OpenFile(ctx, snap, p, b.a.cfg.dir.downloads())
	if err != nil {
		return nil, err
	}
	return &httpui.SnapshotFile{ReadCloser: d, Name: d.Name, Size: d.Size, ModTime: d.ModTime}, nil
}

func (b backupsAPI) Redundancy(ctx context.Context) (store.Redundancy, error) {
	return b.a.repo.Redundancy()
}

func (b backupsAPI) SetRedundancy(ctx context.Context, target int) (store.Redundancy, error) {
	return b.a.repo.SetRedundancy(target)
}
