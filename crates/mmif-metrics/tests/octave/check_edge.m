% MATLAB's edge(I) as the shim tools/octave_shims/matlab_edge/edge.m computes it, against GNU
% Octave's own edge(I/255, 'sobel') with and without thinning, on the gray (first channel) planes
% of MEFB images; and writes crates/mmif-metrics/tests/data/fmi/edge_maps.txt, the shim's maps of
% a few crops with their input values, which the unit test of mmif's edge reads. Documentation
% only: the tests read the generated file, never this script.
%   octave-cli crates/mmif-metrics/tests/octave/check_edge.m MEFB_DIR OUT_FILE
% Prints, per image: pixels; edge pixels of the shim; pixels where the shim's unthinned map
% (b > cutoff) differs from Octave's 'nothinning' map; where the shim's map differs from
% Octave's thinned map.
pkg load image
args = argv();
mefb = args{1}; out = args{2};
scenes = {'507', 'AirBellowsGap', 'ArtistPalette', 'Balloons', 'Bathtub', 'Arno', 'BalancedRock', 'ArchSequence'};
images = {}; N0 = {}; N1 = {};
for s = 1:numel(scenes)
  for side = {'A', 'B'}
    f = dir(fullfile(mefb, 'input', scenes{s}, ['*_' side{1} '.*']));
    X = imread(fullfile(mefb, 'input', scenes{s}, f(1).name));
    images{end+1} = double(X(:, :, 1));
    N0{end+1} = edge(images{end} / 255, 'sobel', 'nothinning');   % Octave's own edge
    N1{end+1} = edge(images{end} / 255, 'sobel');
  end
end
addpath(fullfile(pwd, 'tools', 'octave_shims', 'matlab_edge'));   % from here on, edge is the shim
totals = zeros(1, 4);
fid = fopen(out, 'w');
k = 0;
for s = 1:numel(scenes)
  for side = {'A', 'B'}
    k += 1; I = images{k};
    E = edge(I);
    op = fspecial('sobel') / 8;
    b = imfilter(I, op', 'replicate') .^ 2 + imfilter(I, op, 'replicate') .^ 2;
    T = b > 4 * sum(b(:)) / numel(b);
    d0 = nnz(T ~= N0{k}); d1 = nnz(E ~= N1{k});
    n = [numel(I), nnz(E), d0, d1]; totals += n;
    printf('%s_%s %dx%d: %d edge pixels; unthinned differs on %d, thinned on %d\n', scenes{s}, side{1}, ...
           columns(I), rows(I), n(2:4));
    if strcmp(side{1}, 'A') && s <= 4   % a 40x36 crop around the image centre for the unit test
      r0 = floor(rows(I) / 2) - 18; c0 = floor(columns(I) / 2) - 20;
      C = I(r0 + 1:r0 + 36, c0 + 1:c0 + 40);
      EC = edge(C);
      fprintf(fid, '%s %d %d\n', scenes{s}, columns(C), rows(C));
      fprintf(fid, [repmat('%d ', 1, columns(C) - 1) '%d\n'], C');
      fprintf(fid, [repmat('%d', 1, columns(C)) '\n'], EC');
    end
  end
end
fclose(fid);
printf('total: %d pixels, %d edge pixels; unthinned differs on %d, thinned on %d (%.2f%% of the pixels)\n', ...
       totals, 100 * totals(4) / totals(1));
