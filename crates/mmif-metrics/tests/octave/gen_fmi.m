% Generates crates/mmif-metrics/tests/data/fmi: small crops of the MEFB test inputs and Haghighat's
% FMI as MEFB's metrics/metricsFMI.m computes it: with its default feature 'edge' (FMI, MATLAB's
% edge() through the shim tools/octave_shims/matlab_edge/edge.m), and with 'none' (FMI_pixel) and
% 'gradient' instead, run by GNU Octave. Documentation only: the tests read the generated files,
% never this script.
%   octave-cli crates/mmif-metrics/tests/octave/gen_fmi.m MEFB_DIR OUT_DIR
% The feature is chosen by writing two variants of metricsFMI.m (metricsFMI_pixel.m,
% metricsFMI_gradient.m) to a temporary folder, their FMI(...) calls given the feature as a
% fourth argument; nothing else of the file changes. The 'edge' feature is MATLAB's edge(), which
% GNU Octave's edge() does not reproduce (Octave's metricsFMI fails: FMI converts to double first,
% and Octave's edge rejects a double image outside 0..1, which MATLAB's accepts); FMI itself is
% run with the shim, added to the path only once the cases are built. The edge_* cases are
% Octave's own edge maps (0/1) of the uint8 crops as images, so FMI_pixel on them is the FMI part
% of metricsFMI on binary edge features.
pkg load image
args = argv();
mefb = args{1}; out = args{2};
addpath(fileparts(mfilename('fullpath')));   % write_pnm, write_cases
addpath(fullfile(pwd, 'tools', 'octave_shims'));
tmp = tempname(); mkdir(tmp);
src = fileread(fullfile(mefb, 'metrics', 'metricsFMI.m'));
feats = {'pixel', 'none'; 'gradient', 'gradient'};
for i = 1:rows(feats)
  t = strrep(src, 'function res = metricsFMI(', ['function res = metricsFMI_' feats{i, 1} '(']);
  t = strrep(t, 'FMI(img1,img2,fused);', ['FMI(img1,img2,fused, ''' feats{i, 2} ''');']);
  t = strrep(t, 'fused(:,:,k));', ['fused(:,:,k), ''' feats{i, 2} ''');']);
  fid = fopen(fullfile(tmp, ['metricsFMI_' feats{i, 1} '.m']), 'w'); fputs(fid, t); fclose(fid);
end
addpath(tmp);
addpath(fullfile(mefb, 'metrics'));
in = fullfile(fileparts(out), 'mefb');
% imread returns a P6 file whose pixels are all gray as a 2-D image; the tests read 3 channels
function X = read_pnm(path)
  X = imread(path);
  fid = fopen(path); magic = fread(fid, 2, 'char=>char')'; fclose(fid);
  if strcmp(magic, 'P6') && size(X, 3) == 1, X = repmat(X, [1 1 3]); end
end
rd = @(n, p) read_pnm(fullfile(in, [n '_' p '.pnm']));
% case, crop top-left row and column, height, width (the FMI loops are slow in Octave: small crops)
C = {'gray_lake1', 1, 1, 20, 21; 'gray_knossos6', 9, 5, 19, 17; 'gray_507', 20, 11, 16, 22;
     'gray_airbellowsgap', 3, 20, 21, 18; 'colour_lake1', 10, 10, 12, 13; 'colour_knossos6', 1, 30, 13, 12;
     'colour_507', 25, 1, 11, 14; 'colour_airbellowsgap', 5, 5, 14, 11; 'colour_artistpalette', 30, 30, 12, 12;
     'colour_balancedrock', 2, 7, 13, 11; 'colour_bathtub', 15, 3, 11, 12; 'colour_walldrug', 7, 19, 12, 14;
     'colour_zentrum', 20, 20, 13, 13; 'colour_testchart1', 1, 1, 12, 15; 'colour_museum1', 8, 12, 14, 12;
     'colour_wafflehouse', 11, 4, 12, 12; 'second_bathtub', 1, 1, 15, 14; 'gray_sources_colour_fused', 4, 4, 13, 12;
     'colour_sources_gray_fused', 4, 4, 12, 13; 'fused_is_source', 9, 9, 12, 12; 'const_fused', 2, 2, 11, 12;
     'const_source', 3, 3, 12, 11; 'tiny', 1, 1, 8, 9; 'one_pixel', 1, 1, 1, 1};
cases = {};
for i = 1:rows(C)
  [n, r, c, h, w] = C{i, :};
  cr = @(X) X(r:r+h-1, c:c+w-1, :);
  cases{end+1} = {n, cr(rd(n, 'img1')), cr(rd(n, 'img2')), cr(rd(n, 'fused'))};
end
% Octave's edge maps of the four gray crops as 0/1 images
for i = 1:4
  c = cases{i};
  e = cellfun(@(X) uint8(edge(X)), c(2:4), 'UniformOutput', false);
  cases{end+1} = {['edge_' c{1}], e{:}};
end
addpath(fullfile(pwd, 'tools', 'octave_shims', 'matlab_edge'));   % MATLAB's edge(I), from here on
write_cases(out, cases, {'FMI_pixel', 'FMI_gradient', 'FMI'}, {'img1', 'img2'});
confirm_recursive_rmdir(false); rmdir(tmp, 's');
